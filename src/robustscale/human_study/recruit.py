"""Recruitment at scale: one public join link per study (`study recruit`) that gives each
participant of a recruiting platform (Prolific's PROLIFIC_PID, or any `pid`) a rater of their own
and sends them back to the platform's completion URL when they are done.

A participant's link is derived from the database's secret and their rater id, so joining again
gives the same link: nothing secret is stored, and a second tab resumes the same rater."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import hash_secret
from robustscale.human_study.db import Rater, Recruitment, Study, get_study, signing_secret, utcnow


def participant_secret(secret: bytes, rater_id: int) -> str:
    return hmac.new(secret, f"participant|{rater_id}".encode(), hashlib.sha256).hexdigest()


def participant_link(secret: bytes, rater: Rater) -> str:
    return f"/r/{rater.id}.{participant_secret(secret, rater.id)}"


def participant_rater(s: Session, study: Study, pid: str, secret: bytes) -> Rater:
    """A new rater for participant `pid`, committed. Its name (unique per study) is made from the
    id, so that the same participant can never get two raters."""
    rater = Rater(study_id=study.id, name=f"pid-{pid}", kind="human", external_id=pid,
                  token_hash="")
    s.add(rater)
    s.flush()
    rater.token_hash = hash_secret(participant_secret(secret, rater.id))
    s.commit()
    return rater


def completion_code(url: str) -> str | None:
    """The completion code in a platform's completion URL (Prolific: `?cc=CODE`)."""
    values = parse_qs(urlsplit(url).query).get("cc")
    return values[0] if values else None


def recruit(sessions: sessionmaker[Session], study_name: str, completion_url: str,
            max_raters: int | None = None, days: float | None = None) -> dict:
    """Open (or reopen with new settings) the study's public join link; returns its path
    `/join/<key>` and settings. Reopening keeps the key, so links already posted keep working."""
    parts = urlsplit(completion_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RobustscaleError(f"completion_url {completion_url!r}: expected an http(s) URL, e.g. "
                               "https://app.prolific.com/submissions/complete?cc=CODE")
    if max_raters is not None and max_raters < 1:
        raise RobustscaleError(f"max_raters {max_raters}: expected a positive integer")
    if days is not None and not days > 0:
        raise RobustscaleError(f"days {days}: expected a positive number of days")
    signing_secret(sessions)  # created now, so that every server process derives the same links
    with sessions() as s:
        study = get_study(s, study_name)
        row = s.get(Recruitment, study.id)
        if row is None:
            row = Recruitment(study_id=study.id, key=secrets.token_urlsafe(16))
            s.add(row)
        row.completion_url, row.max_raters = completion_url, max_raters
        row.expires = utcnow() + dt.timedelta(days=days) if days else None
        s.commit()
        joined = len(list(s.scalars(select(Rater.id).where(Rater.study_id == study.id,
                                                           Rater.external_id.is_not(None)))))
        return {"study": study_name, "path": f"/join/{row.key}", "completion_url": completion_url,
                "completion_code": completion_code(completion_url), "max_raters": max_raters,
                "expires": row.expires.isoformat() if row.expires else None, "joined": joined}
