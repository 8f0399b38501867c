"""The public quiz: label 25 adversarial images, then compare with the model and the raters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from robustscale.human_study.deps import csrf_token, get_session, require_csrf
from robustscale.human_study.quiz import quiz_png, quiz_score

router = APIRouter(prefix="/quiz")


@router.get("/{name}", response_class=HTMLResponse)
def quiz_page(request: Request, name: str, s: Session = Depends(get_session)) -> HTMLResponse:
    quiz = request.app.state.quizzes.get(s, name)
    return request.app.state.templates.TemplateResponse(request, "quiz.html", {
        "study": quiz.study, "classes": quiz.classes, "n": len(quiz.image_ids),
        "csrf": csrf_token(request)})


@router.get("/{name}/image/{k}")
def quiz_image(request: Request, name: str, k: int, s: Session = Depends(get_session)) -> Response:
    quiz = request.app.state.quizzes.get(s, name)
    if not 0 <= k < len(quiz.image_ids):
        raise HTTPException(404, "no such quiz image")
    # the quiz never changes for a study: browsers may keep its images
    return Response(quiz_png(s, quiz, k), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.post("/{name}", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def quiz_submit(request: Request, name: str) -> HTMLResponse:
    form = await request.form()
    with request.app.state.sessions() as s:
        quiz = request.app.state.quizzes.get(s, name)
        n = len(quiz.image_ids)
        try:
            answers = [int(form[f"answer_{k}"]) for k in range(n)]
        except (KeyError, ValueError, TypeError):  # TypeError: a file field
            raise HTTPException(422, f"expected answer_0..answer_{n - 1}, each a class index") from None
        if any(not 0 <= a < len(quiz.classes) for a in answers):
            raise HTTPException(422, "unknown class")
        result = quiz_score(s, quiz, answers)
    return request.app.state.templates.TemplateResponse(request, "quiz_score.html",
                                                        {"study": name, "result": result})
