"""Shared pieces of the study routes: DB session, the rater behind a link, CSRF, security
headers, request-body guard, signed item nonces and admin sessions, rate limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Iterator

from fastapi import HTTPException, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser

from robustscale.human_study.answers import (
    TOKEN_RE,
    hash_secret,
    rater_for_token,
    rater_sequence,
    study_image_ids,
)
from robustscale.human_study.db import AdminSession, Rater, Study, utcnow

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
        entry[0].expires, entry[0].consented = s.execute(
            select(Rater.expires, Rater.consented).where(Rater.id == entry[0].id)).one()
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

    def _tokens(self, key, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def allow(self, key) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, now)
            ok = tokens >= 1
            self._buckets[key] = (tokens - 1 if ok else tokens, now)
            return ok

    def spent(self, key) -> bool:
        """No event allowed for `key` right now (nothing is used up by asking)."""
        with self._lock:
            return self._tokens(key, time.monotonic()) < 1


def is_admin(request: Request) -> bool:
    """Admin by session cookie (set at /admin/login, until it expires or logs out) or by
    `Authorization: Bearer <admin token>`. Bearer guesses draw on the login throttle of the
    client's address: once it is spent, every Bearer attempt gets 429, right or wrong."""
    token = request.app.state.settings.admin_token
    if not token:
        return False
    bearer = request.headers.get("authorization", "")
    if bearer.startswith("Bearer "):
        limiter, client = request.app.state.login_limiter, client_address(request)
        if limiter.spent(client):
            raise HTTPException(429, "too many admin login attempts: wait a minute",
                                headers={"Retry-After": "60"})
        if hmac.compare_digest(bearer[7:].encode(), token.encode()):
            return True
        limiter.allow(client)
    return admin_session(request) is not None


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _token_hash(request: Request) -> str:
    # stored with each session, so that changing the admin token ends every session
    return hash_secret(request.app.state.settings.admin_token or "")


def new_admin_cookie(request: Request, s: Session) -> str:
    """A fresh admin session: a random id (only its hash is stored) that lives for
    `settings.admin_session_seconds`."""
    sid = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(seconds=request.app.state.settings.admin_session_seconds)
    s.add(AdminSession(id_hash=hash_secret(sid), token_hash=_token_hash(request), expires=expires))
    s.commit()
    return sid


def admin_session(request: Request) -> AdminSession | None:
    """The request's live admin session, or None (no cookie, unknown, expired, logged out, or
    opened with another admin token). The cookie is only ever hashed, never parsed."""
    sid = request.cookies.get(ADMIN_COOKIE, "")
    if not sid or len(sid) > 128:
        return None
    with request.app.state.sessions() as s:
        row = s.get(AdminSession, hash_secret(sid))
    if row is None or row.ended is not None or row.expires <= utcnow() or \
            not hmac.compare_digest(row.token_hash, _token_hash(request)):
        return None
    return row


def end_admin_session(request: Request) -> None:
    row = admin_session(request)
    if row is not None:
        with request.app.state.sessions() as s:
            s.execute(update(AdminSession).where(AdminSession.id_hash == row.id_hash)
                      .values(ended=utcnow()))
            s.commit()


def require_admin(request: Request) -> None:
    if not is_admin(request):
        raise HTTPException(401, "admin login required")
