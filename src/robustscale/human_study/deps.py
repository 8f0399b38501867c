"""Shared pieces of the study routes: DB session, the rater behind a link, CSRF, security
headers, request-body guard, signed item nonces and admin sessions, rate limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Iterator

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser

from robustscale.human_study.answers import (TOKEN_RE, rater_for_token, rater_sequence,
                                             study_image_ids)
from robustscale.human_study.db import Rater, Study, utcnow

CSRF_COOKIE = "rs_csrf"
ADMIN_COOKIE = "rs_admin"
LINK_GONE = "this link is wrong or has expired"
# Pages load only their own scripts, styles and images: an injected <script> does not run.
CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


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
               (b"referrer-policy", b"no-referrer"),  # rater tokens live in the URL
               (b"content-security-policy", CSP.encode())]

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


class BodyGuardMiddleware:
    """Refuses a request before its body is read when the rater link it posts to is wrong (403)
    or its declared body is over `settings.max_body` (413), then reads the body, up to that cap,
    for the app. Without it a 100 MiB upload would be parsed before the route checks the link."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        state = scope["app"].state
        limit = state.settings.max_body
        parts = scope["path"].split("/")
        if len(parts) >= 3 and parts[1] == "r" and \
                not await run_in_threadpool(link_is_good, state, parts[2]):
            return await _refuse(send, 403, LINK_GONE)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            return await _refuse(send, 413, f"request body over {limit} bytes")
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:  # chunked upload without a Content-Length
                return await _refuse(send, 413, f"request body over {limit} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def link_is_good(state, token: str) -> bool:
    if TOKEN_RE.fullmatch(token) is None:
        return False
    with state.sessions() as s:
        try:
            rater_context(state, s, token)
        except HTTPException:
            return False
    return True


def rater_context(state, s: Session, token: str) -> tuple[Rater, Study, list]:
    """The link's human rater, study and item sequence, or HTTP 403. A verified link is cached
    for `settings.rater_cache_seconds`; after that its rater row is read again, so a revoked or
    expired link stops working within that time."""
    cache = state.raters
    entry = cache.get(token)
    now = time.monotonic()
    if entry is None:
        rater = rater_for_token(s, token)
        if rater is None or rater.kind != "human":
            raise HTTPException(403, LINK_GONE)
        study = s.get(Study, rater.study_id)
        sequences = state.sequences
        if study.id not in sequences:
            sequences[study.id] = rater_sequence(study_image_ids(s, study.id), study.batch_size)
        entry = cache[token] = [rater, study, sequences[study.id], now]
    elif now - entry[3] > state.settings.rater_cache_seconds:
        entry[0].expires = s.scalar(select(Rater.expires).where(Rater.id == entry[0].id))
        entry[3] = now
    rater, study, seq, _ = entry
    if rater.expires is not None and rater.expires <= utcnow():
        cache.pop(token, None)
        raise HTTPException(403, LINK_GONE)
    return rater, study, seq


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
    """Admin by session cookie (set at /admin/login, until it expires or logs out) or by
    `Authorization: Bearer <admin token>`."""
    token = request.app.state.settings.admin_token
    if not token:
        return False
    bearer = request.headers.get("authorization", "")
    if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), token.encode()):
        return True
    return admin_session(request) is not None


def _admin_signature(request: Request, sid: str, expires: str) -> str:
    # the token's hash is signed in, so changing the admin token ends every session
    token = request.app.state.settings.admin_token or ""
    return sign(request.app.state.secret, "admin", sid, expires,
                hashlib.sha256(token.encode()).hexdigest())


def new_admin_cookie(request: Request) -> str:
    """`<session id>.<expiry, unix s>.<signature>` for a fresh admin session."""
    sid = secrets.token_urlsafe(12)
    expires = str(int(time.time() + request.app.state.settings.admin_session_seconds))
    return f"{sid}.{expires}.{_admin_signature(request, sid, expires)}"


def admin_session(request: Request) -> str | None:
    """The id of the request's live admin session, or None (no cookie, forged, expired, logged
    out)."""
    sid, expires, signature = (request.cookies.get(ADMIN_COOKIE, "").split(".") + ["", "", ""])[:3]
    if not (sid and expires.isdigit() and int(expires) > time.time()):
        return None
    if not hmac.compare_digest(signature.encode(), _admin_signature(request, sid, expires).encode()):
        return None
    return None if sid in request.app.state.logged_out else sid


def require_admin(request: Request) -> None:
    if not is_admin(request):
        raise HTTPException(401, "admin login required")
