"""Shared dependencies of the study routes: DB session, CSRF, signed item nonces, rate limit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Iterator

from fastapi import HTTPException, Request
from starlette.requests import cookie_parser
from sqlalchemy.orm import Session

CSRF_COOKIE = "rs_csrf"
ADMIN_COOKIE = "rs_admin"


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as s:
        yield s


def csrf_token(request: Request) -> str:
    """The double-submit token of this browser (set as a cookie by the app's middleware)."""
    return request.state.csrf


async def require_csrf(request: Request) -> None:
    """Every POST must echo the CSRF cookie in a form field or X-CSRF-Token header."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        sent = str((await request.form()).get("csrf_token", ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page")


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


class CsrfCookieMiddleware:
    """Gives every browser a CSRF cookie (double-submit pattern) and security headers.

    Plain ASGI rather than @app.middleware("http"): it runs on every answer, and the latter
    costs a task group and two streams per request."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer")]  # rater tokens live in the URL

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = next((v for k, v in scope["headers"] if k == b"cookie"), b"")
        token = cookie_parser(header.decode("latin-1")).get(CSRF_COOKIE)
        scope.setdefault("state", {})["csrf"] = token or new_csrf()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self.HEADERS
                if token is None:
                    cookie = f"{CSRF_COOKIE}={scope['state']['csrf']}; HttpOnly; Path=/; SameSite=strict"
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def sign(secret: bytes, *parts) -> str:
    return hmac.new(secret, "|".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


def check_signature(secret: bytes, signature: str, *parts) -> bool:
    return hmac.compare_digest(sign(secret, *parts).encode(), signature.encode())


class RateLimiter:
    """Token bucket per key (a rater): `rate` events per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            ok = tokens >= 1
            self._buckets[key] = (tokens - 1 if ok else tokens, now)
            return ok


def is_admin(request: Request) -> bool:
    """Admin by cookie (set at /admin/login) or `Authorization: Bearer <admin token>`."""
    token = request.app.state.settings.admin_token
    if not token:
        return False
    bearer = request.headers.get("authorization", "")
    if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), token.encode()):
        return True
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), admin_cookie_value(request).encode())


def admin_cookie_value(request: Request) -> str:
    token = request.app.state.settings.admin_token or ""
    return sign(request.app.state.secret, "admin", hashlib.sha256(token.encode()).hexdigest())


def require_admin(request: Request) -> None:
    if not is_admin(request):
        raise HTTPException(401, "admin login required")
