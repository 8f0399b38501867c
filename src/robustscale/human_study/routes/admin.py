"""Admin pages: login (throttled per client address) and logout, studies, progress per rater,
agreement and score, CSV export."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from robustscale.human_study.db import Study, get_study
from robustscale.human_study.deps import (
    ADMIN_COOKIE,
    client_address,
    csrf_token,
    end_admin_session,
    get_session,
    new_admin_cookie,
    require_admin,
    require_csrf,
)
from robustscale.human_study.results import answer_rows, answers_csv, progress, study_ratings
from robustscale.human_study.scoring import score

router = APIRouter(prefix="/admin")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, "admin_login.html", {"csrf": csrf_token(request), "error": None})


@router.post("/login", dependencies=[Depends(require_csrf)])
def login(request: Request, password: str = Form(...), s: Session = Depends(get_session)) -> Response:
    if not request.app.state.login_limiter.allow(client_address(request)):
        raise HTTPException(429, "too many login attempts: wait a minute",
                            headers={"Retry-After": "60"})
    token = request.app.state.settings.admin_token
    if not token or not hmac.compare_digest(password.encode(), token.encode()):
        return request.app.state.templates.TemplateResponse(
            request, "admin_login.html", {"csrf": csrf_token(request), "error": "wrong password"},
            status_code=401)
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(ADMIN_COOKIE, new_admin_cookie(request, s), httponly=True,
                        samesite="strict", path="/admin",
                        max_age=int(request.app.state.settings.admin_session_seconds))
    return response


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    """End this admin session: the cookie is dropped here and refused if presented again, by
    any server process, before or after a restart."""
    end_admin_session(request)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse, dependencies=[Depends(require_admin)])
def studies(request: Request, s: Session = Depends(get_session)) -> HTMLResponse:
    rows = [{"name": st.name, "progress": progress(s, st)}
            for st in s.scalars(select(Study).order_by(Study.id))]
    return request.app.state.templates.TemplateResponse(request, "admin_index.html",
                                                        {"studies": rows, "csrf": csrf_token(request)})


@router.get("/{name}", response_class=HTMLResponse, dependencies=[Depends(require_admin)])
def study_page(request: Request, name: str, s: Session = Depends(get_session)) -> HTMLResponse:
    study = get_study(s, name)
    return request.app.state.templates.TemplateResponse(request, "admin_study.html", {
        "study": study, "progress": progress(s, study), "score": score(study_ratings(s, study)),
        "csrf": csrf_token(request)})


@router.get("/{name}/answers.csv", dependencies=[Depends(require_admin)])
def export(name: str, s: Session = Depends(get_session)) -> Response:
    return Response(answers_csv(answer_rows(s, get_study(s, name))), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}-answers.csv"'})


@router.get("/{name}/score.json", dependencies=[Depends(require_admin)])
def score_json(name: str, s: Session = Depends(get_session)) -> dict:
    return {"study": name, **score(study_ratings(s, get_study(s, name)))}
