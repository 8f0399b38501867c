"""Public join links (`study recruit`): a participant arriving from a recruiting platform such as
Prolific gets a rater of their own, keyed by their participant id, and their personal page."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robustscale.human_study.db import Rater, Recruitment, Study, utcnow
from robustscale.human_study.deps import client_address, get_session
from robustscale.human_study.recruit import participant_link, participant_rater

router = APIRouter(prefix="/join")
# Prolific's ids are 24 hex digits; other platforms use similar opaque ids
PID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@router.get("/{key}")
def join(request: Request, key: str, s: Session = Depends(get_session)) -> RedirectResponse:
    """Create or resume the rater of the participant named by PROLIFIC_PID (Prolific's name) or
    pid; STUDY_ID and SESSION_ID are accepted and not needed."""
    if not request.app.state.join_limiter.allow(client_address(request)):
        raise HTTPException(429, "too many joins from this address: wait a minute",
                            headers={"Retry-After": "60"})
    recruitment = s.scalar(select(Recruitment).where(Recruitment.key == key))
    if recruitment is None or (recruitment.expires is not None and recruitment.expires <= utcnow()):
        raise HTTPException(404, "this study link is wrong or the study has closed")
    pid = request.query_params.get("PROLIFIC_PID") or request.query_params.get("pid") or ""
    if PID_RE.fullmatch(pid) is None:
        raise HTTPException(422, "expected your participant id as PROLIFIC_PID=... or pid=... "
                            "(letters, digits, '-' or '_')")
    study = s.get(Study, recruitment.study_id)
    rater = s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.external_id == pid))
    if rater is None:
        joined = s.scalar(select(func.count()).select_from(Rater).where(
            Rater.study_id == study.id, Rater.external_id.is_not(None)))
        if recruitment.max_raters is not None and joined >= recruitment.max_raters:
            raise HTTPException(403, "this study has all the participants it needs")
        try:
            rater = participant_rater(s, study, pid, request.app.state.secret)
        except IntegrityError:  # the same participant joined twice at once: one rater
            s.rollback()
            rater = s.scalar(select(Rater).where(Rater.study_id == study.id,
                                                 Rater.external_id == pid))
            if rater is None:  # the name was taken by a rater added by hand
                raise HTTPException(409, "this participant id cannot join: ask the researchers") \
                    from None
    return RedirectResponse(participant_link(request.app.state.secret, rater), status_code=303)

