"""The study web app: `create_app(settings)` builds it; nothing happens at import."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from robustscale.errors import RobustscaleError
from robustscale.human_study.config import Settings
from robustscale.human_study.db import make_engine, make_sessionmaker, signing_secret
from robustscale.human_study.deps import BodyGuardMiddleware, CsrfCookieMiddleware, RateLimiter
from robustscale.human_study.quiz import QuizCache

HERE = Path(__file__).parent


def create_app(settings: Settings) -> FastAPI:
    from robustscale.human_study.routes import admin, join, quiz, rater

    app = FastAPI(title="robustscale human-validity study", docs_url=None, redoc_url=None,
                  openapi_url=None)
    engine = make_engine(settings.db_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.secret = signing_secret(app.state.sessions)
    app.state.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    app.state.login_limiter = RateLimiter(settings.login_attempts_per_minute / 60,
                                          settings.login_attempts_per_minute)
    # public join links: new participants per client address (a person joins once)
    app.state.join_limiter = RateLimiter(settings.joins_per_minute / 60, settings.joins_per_minute)
    app.state.raters = {}  # verified token -> [rater, study, sequence, checked at]
    app.state.quizzes = QuizCache(settings.quiz_size)
    app.state.sequences = {}  # study id -> image ids by position (images never change)
    # SQLite has one writer at a time: queueing writers on a lock here is faster than SQLite's
    # busy handler, which sleeps up to 100 ms between retries.
    app.state.write_lock = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(rater.router)
    app.include_router(admin.router)
    app.include_router(quiz.router)
    app.include_router(join.router)

    app.add_middleware(BodyGuardMiddleware)
    app.add_middleware(CsrfCookieMiddleware)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if "text/html" in request.headers.get("accept", ""):
            return app.state.templates.TemplateResponse(
                request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RobustscaleError)
    async def not_found(request: Request, exc: RobustscaleError):
        return await http_error(request, HTTPException(404, str(exc)))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return app.state.templates.TemplateResponse(request, "index.html", {})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    return app
