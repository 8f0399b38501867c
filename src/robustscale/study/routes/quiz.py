"""The public quiz: label 25 adversarial images, then compare with the model and the raters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from robustscale.study.db import get_study
from robustscale.study.deps import csrf_token, get_session, require_csrf
from robustscale.study.quiz import quiz_images, quiz_score

router = APIRouter(prefix="/quiz")


@router.get("/{name}", response_class=HTMLResponse)
def quiz_page(request: Request, name: str, s: Session = Depends(get_session)) -> HTMLResponse:
    study = get_study(s, name)
    n = len(quiz_images(s, study, request.app.state.settings.quiz_size))
    return request.app.state.templates.TemplateResponse(request, "quiz.html", {
        "study": study.name, "classes": study.classes, "n": n, "csrf": csrf_token(request)})


@router.get("/{name}/image/{k}")
def quiz_image(request: Request, name: str, k: int, s: Session = Depends(get_session)) -> Response:
    images = quiz_images(s, get_study(s, name), request.app.state.settings.quiz_size)
    if not 0 <= k < len(images):
        raise HTTPException(404, "no such quiz image")
    return Response(images[k].adversarial_png, media_type="image/png")


@router.post("/{name}", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def quiz_submit(request: Request, name: str) -> HTMLResponse:
    form = await request.form()
    with request.app.state.sessions() as s:
        study = get_study(s, name)
        n = len(quiz_images(s, study, request.app.state.settings.quiz_size))
        try:
            answers = [int(form[f"answer_{k}"]) for k in range(n)]
        except (KeyError, ValueError):
            raise HTTPException(422, f"expected answer_0..answer_{n - 1}, each a class index") from None
        if any(not 0 <= a < len(study.classes) for a in answers):
            raise HTTPException(422, "unknown class")
        result = quiz_score(s, study, answers, request.app.state.settings.quiz_size)
    return request.app.state.templates.TemplateResponse(request, "quiz_score.html",
                                                        {"study": name, "result": result})
