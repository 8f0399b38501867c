"""Raters and their answers: personal links (tokens), the order a rater sees the images in,
storing an answer, undoing the last one, revoking a link.

`add_rater` and `revoke_rater` open their own transaction from a session factory (CLI,
notebook); the functions the web app calls per request take the request's open `Session`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.human_study.db import (
    CONFIDENCES,
    PHASES,
    Answer,
    Image,
    Rater,
    get_study,
    lock_rater,
    utcnow,
)

# `<rater id>.<secret>`: ASCII digits only (str.isdigit also accepts '²', which int() rejects)
# and bounded, so that an id never overflows a database integer; token_urlsafe(24) is 32 chars.
TOKEN_RE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{16,128})")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_rater(sessions: sessionmaker[Session], study_name: str, rater_name: str,
              kind: str = "human", days: float | None = None) -> tuple[Rater, str]:
    """A new rater and their token `<id>.<secret>`; only the secret's hash is stored.
    `days`: the link stops working after that many days (None: never)."""
    if not rater_name or len(rater_name) > 128:
        raise RobustscaleError(f"rater name {rater_name!r}: expected 1-128 characters")
    if days is not None and not days > 0:
        raise RobustscaleError(f"days {days}: expected a positive number of days (or none for a "
                               "link that does not expire)")
    with sessions() as s:
        rater, token = new_rater(s, get_study(s, study_name), rater_name, kind, days)
        s.commit()
        return rater, token


def new_rater(s: Session, study, rater_name: str, kind: str,
              days: float | None = None) -> tuple[Rater, str]:
    """Add a rater to `study` in the open session `s` (not committed); returns it and its token."""
    if s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.name == rater_name)):
        raise RobustscaleError(f"rater {rater_name!r}: already in study {study.name!r}")
    secret = secrets.token_urlsafe(24)  # 192 random bits
    expires = utcnow() + dt.timedelta(days=days) if days else None
    rater = Rater(study_id=study.id, name=rater_name, kind=kind, token_hash=hash_secret(secret),
                  expires=expires)
    s.add(rater)
    s.flush()
    return rater, f"{rater.id}.{secret}"


def revoke_rater(sessions: sessionmaker[Session], study_name: str, rater_name: str) -> dict:
    """End a rater's link now (their answers stay). A running server notices within its
    rater-cache lifetime (`Settings.rater_cache_seconds`)."""
    with sessions() as s:
        study = get_study(s, study_name)
        rater = s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.name == rater_name))
        if rater is None:
            raise RobustscaleError(f"rater {rater_name!r}: no such rater in study {study_name!r}")
        rater.expires = utcnow()
        s.commit()
        return {"study": study_name, "rater": rater_name, "revoked": rater.expires.isoformat()}


def rater_for_token(s: Session, token: str) -> Rater | None:
    """The rater whose token this is, compared in constant time; None if malformed, wrong or
    expired."""
    m = TOKEN_RE.fullmatch(token)
    if m is None:
        return None
    rater = s.get(Rater, int(m.group(1)))
    # Compare against a dummy hash when the id is unknown, so timing says nothing about ids.
    expected = rater.token_hash if rater is not None else "0" * 64
    if not hmac.compare_digest(hash_secret(m.group(2)), expected) or rater is None:
        return None
    return rater if is_active(rater) else None


def is_active(rater: Rater) -> bool:
    return rater.expires is None or rater.expires > utcnow()


class Sequence(list):
    """The items (image id, phase) a rater sees, in order, with each item's index."""

    def __init__(self, items):
        super().__init__(items)
        self.index_of = {item: k for k, item in enumerate(self)}


def rater_sequence(image_ids: list[int], batch_size: int) -> Sequence:
    """The order a human rater sees: per batch, its adversarial images, then their clean versions
    (§4.1: clean images were classified after the adversarial ones)."""
    seq = []
    for b in range(0, len(image_ids), batch_size):
        batch = image_ids[b:b + batch_size]
        seq += [(i, "adversarial") for i in batch] + [(i, "clean") for i in batch]
    return Sequence(seq)


def study_image_ids(s: Session, study_id: int) -> list[int]:
    return list(s.scalars(select(Image.id).where(Image.study_id == study_id).order_by(Image.position)))


def answered_count(s: Session, rater_id: int) -> int:
    return s.scalar(select(func.count()).select_from(Answer).where(Answer.rater_id == rater_id))


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a rater stands: `done` answers stored, `next` the index in the sequence of the first
    item not answered yet (len(sequence) when finished), `last` the index of the item answered
    last (None before the first answer). Answers imported for later items are skipped over."""

    done: int
    next: int
    last: int | None


def rater_progress(s: Session, rater_id: int, sequence: Sequence) -> Progress:
    items = [(i, p) for i, p in s.execute(select(Answer.image_id, Answer.phase)
                                          .where(Answer.rater_id == rater_id)
                                          .order_by(Answer.position))]
    answered = set(items)
    nxt = next((k for k, item in enumerate(sequence) if item not in answered), len(sequence))
    return Progress(len(items), nxt, sequence.index_of.get(items[-1]) if items else None)


class AnswerRejected(Exception):
    """An answer the study must not store; `status` is the HTTP status to reply with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def record_answer(s: Session, rater: Rater, sequence: Sequence, image_id: int,
                  phase: str, choice: int, confidence: str, n_classes: int,
                  seconds: float | None) -> Progress:
    """Store one human answer, which must be the rater's next item; returns the new progress.

    Out-of-assignment, out-of-order, duplicate and replayed answers raise AnswerRejected. The
    rater's row lock makes the check and the insert one step; the unique constraints settle
    anything that slips past it."""
    if phase not in PHASES or confidence not in CONFIDENCES:
        raise AnswerRejected(422, "phase must be adversarial|clean and confidence low|high")
    if not 0 <= choice < n_classes:
        raise AnswerRejected(422, f"choice must be a class index 0..{n_classes - 1}")
    if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
        raise AnswerRejected(422, "seconds must be a finite number >= 0")
    if (image_id, phase) not in sequence.index_of:
        raise AnswerRejected(403, "image not in this rater's assignment")
    lock_rater(s, rater.id)
    now = rater_progress(s, rater.id, sequence)
    if now.next >= len(sequence) or sequence[now.next] != (image_id, phase):
        s.rollback()
        raise AnswerRejected(409, "duplicate or out-of-order answer")
    try:
        s.execute(insert(Answer).values(rater_id=rater.id, image_id=image_id, phase=phase,
                                        position=now.done, choice=choice,
                                        high_confidence=confidence == "high", seconds=seconds))
        after = rater_progress(s, rater.id, sequence)
        s.commit()
    except IntegrityError:
        s.rollback()
        raise AnswerRejected(409, "duplicate answer") from None
    return after


def segment(sequence: list[tuple[int, str]], k: int, batch_size: int) -> tuple[int, str]:
    """(batch, phase) of item k: the stretch of images a rater sees without a break."""
    return k // (2 * batch_size), sequence[k][1]


def undo_answer(s: Session, rater: Rater, sequence: Sequence, batch_size: int) -> Progress:
    """Delete the rater's last answer if its item lies in the batch and phase they are answering
    now (an answer from a finished phase stays: its images were followed by the clean versions);
    returns the new progress."""
    lock_rater(s, rater.id)
    now = rater_progress(s, rater.id, sequence)
    if now.last is None or now.next >= len(sequence) or \
            segment(sequence, now.last, batch_size) != segment(sequence, now.next, batch_size):
        s.rollback()
        raise AnswerRejected(409, "nothing to undo in this phase")
    s.execute(delete(Answer).where(Answer.rater_id == rater.id, Answer.position == now.done - 1))
    after = rater_progress(s, rater.id, sequence)
    s.commit()
    return after
