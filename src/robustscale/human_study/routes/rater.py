"""A rater's pages: the next image, answers posted one by one (and the last one undone),
images of their assignment."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from robustscale.human_study.answers import (
    AnswerRejected,
    Progress,
    rater_progress,
    record_answer,
    segment,
    undo_answer,
)
from robustscale.human_study.db import Image, Rater, Recruitment, Study, utcnow
from robustscale.human_study.deps import (
    check_signature,
    csrf_token,
    get_session,
    rater_context,
    require_csrf,
    sign,
)

router = APIRouter(prefix="/r")


def _rater(request: Request, s: Session, token: str) -> tuple[Rater, Study, list]:
    return rater_context(request.app.state, s, token)


def _consented(rater: Rater) -> bool:
    """A participant who joined through a public link has agreed to the consent page."""
    return rater.external_id is None or rater.consented is not None


def _item(request: Request, token: str, rater: Rater, study: Study, seq: list,
          now: Progress) -> dict:
    """What the page needs to show the rater's next item, with a signed nonce binding it to this
    rater and the time it was served (the answer's time is measured from it). `can_undo`: the
    last answer lies in the same batch and phase."""
    total, done = len(seq), now.done
    if now.next >= total:
        return {"done": done, "total": total, "next": None}
    image_id, phase = seq[now.next]
    issued = f"{time.time():.3f}"
    n_images = total // 2
    batch = now.next // (2 * study.batch_size)
    in_batch = min(study.batch_size, n_images - batch * study.batch_size)
    offset = now.next - batch * 2 * study.batch_size
    return {"done": done, "total": total, "next": {
        "image_id": image_id, "phase": phase, "issued": issued,
        "nonce": sign(request.app.state.secret, "item", rater.id, image_id, phase, issued),
        "url": f"/r/{token}/image/{image_id}/{phase}",
        "batch": batch + 1, "batches": -(-n_images // study.batch_size),
        "position": offset % in_batch + 1, "batch_size": in_batch,
        "can_undo": now.last is not None and segment(seq, now.last, study.batch_size) ==
        segment(seq, now.next, study.batch_size)}}


@router.get("/{token}", response_class=HTMLResponse)
def rater_page(request: Request, token: str, s: Session = Depends(get_session)) -> Response:
    rater, study, seq = _rater(request, s, token)
    page = {"rater": rater.name, "classes": study.classes, "token": token,
            "csrf": csrf_token(request)}
    if not _consented(rater):
        return request.app.state.templates.TemplateResponse(request, "consent.html", page)
    item = _item(request, token, rater, study, seq, rater_progress(s, rater.id, seq))
    if item["next"] is None and rater.external_id is not None:
        recruitment = s.get(Recruitment, study.id)
        if recruitment is not None:  # back to the recruiting platform, which records the code
            return RedirectResponse(recruitment.completion_url, status_code=303)
    return request.app.state.templates.TemplateResponse(
        request, "rater.html", {**page, "item": item}, headers={"Cache-Control": "no-store"})


@router.post("/{token}/consent", dependencies=[Depends(require_csrf)])
def consent(request: Request, token: str, s: Session = Depends(get_session)) -> Response:
    """The participant agreed to the consent page: the first image comes next."""
    rater, _, _ = _rater(request, s, token)
    if rater.consented is None:
        rater.consented = utcnow()  # the cached row, so this process sees it at once
        s.execute(update(Rater).where(Rater.id == rater.id).values(consented=rater.consented))
        s.commit()
    return RedirectResponse(f"/r/{token}", status_code=303)


@router.get("/{token}/image/{image_id}/{phase}")
def rater_image(request: Request, token: str, image_id: int, phase: str,
                s: Session = Depends(get_session)) -> Response:
    """Only images the rater has reached: no peeking at clean versions ahead of time."""
    rater, study, seq = _rater(request, s, token)
    try:
        k = seq.index((image_id, phase))
    except ValueError:
        raise HTTPException(404, "no such image in your assignment") from None
    if k > rater_progress(s, rater.id, seq).next:
        raise HTTPException(403, "not reached yet")
    column = Image.adversarial_png if phase == "adversarial" else Image.clean_png
    png = s.scalar(select(column).where(Image.id == image_id))  # one PNG, not the row's two
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/{token}/answer", dependencies=[Depends(require_csrf)])
def answer(request: Request, token: str, image_id: int = Form(...), phase: str = Form(...),
           choice: int = Form(...), confidence: str = Form(...), issued: str = Form(...),
           nonce: str = Form(...), s: Session = Depends(get_session)) -> JSONResponse:
    """Store one answer the moment it is given; reply with the next item."""
    rater, study, seq = _rater(request, s, token)
    if not _consented(rater):
        raise HTTPException(403, "open your link and agree to the consent page first")
    if not request.app.state.limiter.allow(rater.id):
        raise HTTPException(429, "too many answers per second", headers={"Retry-After": "1"})
    if not check_signature(request.app.state.secret, nonce, "item", rater.id, image_id, phase,
                           issued):
        raise HTTPException(403, "this answer was not for an image you were shown")
    try:
        seconds = max(0.0, time.time() - float(issued))
        with request.app.state.write_lock:
            # End the read transaction the rater lookup began: on SQLite (WAL) a transaction whose
            # snapshot predates another answer's commit cannot become a write ("database is locked").
            s.commit()
            now = record_answer(s, rater, seq, image_id, phase, choice, confidence,
                                len(study.classes), seconds)
    except AnswerRejected as e:
        raise HTTPException(e.status, str(e)) from None
    return JSONResponse(_item(request, token, rater, study, seq, now))


@router.post("/{token}/undo", dependencies=[Depends(require_csrf)])
def undo(request: Request, token: str, s: Session = Depends(get_session)) -> JSONResponse:
    """Take back the last answer of the current phase; reply with that item again."""
    rater, study, seq = _rater(request, s, token)
    if not _consented(rater):
        raise HTTPException(403, "open your link and agree to the consent page first")
    if not request.app.state.limiter.allow(rater.id):
        raise HTTPException(429, "too many requests per second", headers={"Retry-After": "1"})
    try:
        with request.app.state.write_lock:
            s.commit()  # a fresh snapshot for the write, as in `answer`
            now = undo_answer(s, rater, seq, study.batch_size)
    except AnswerRejected as e:
        raise HTTPException(e.status, str(e)) from None
    return JSONResponse(_item(request, token, rater, study, seq, now))
