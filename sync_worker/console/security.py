"""Who may use the console, and proof that a form was sent from the console itself.

    login     the login form holds a CSRF token of a fresh session; its POST checks the token (constant time) and
              takes the operator's name, then starts the session again: operator, new CSRF token
    pages     a browser's GET without a session is sent to the login page
    other     anything else without a session, or with a wrong bearer token, gets 401
    actions   a POST without the form's CSRF token (or with a wrong one) gets 403 before anything else is looked
              at; a forged cross-site form has no token, and SameSite=Strict keeps the cookie from it as well
    scripts   `Authorization: Bearer <token>` stands for a session (no CSRF token: browsers never add that header
              on their own); `X-CT-Sync-Operator` names who is acting

The session cookie is Starlette's (signed with itsdangerous): HttpOnly, SameSite=Strict, expiring with the session
lifetime, and Secure when the request came over TLS (uvicorn takes the scheme from X-Forwarded-Proto when the
proxy is trusted: `FORWARDED_ALLOW_IPS`). The signing key is made at start, so a restart logs everybody out.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "ct_sync_console"
CSRF_FIELD = "csrf_token"
OPERATOR_HEADER = "x-ct-sync-operator"
MAX_NAME = 100
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class SessionsByScheme:
    """Starlette's session middleware twice over one key, so that a cookie sent over TLS is marked Secure and one
    sent over plain HTTP on loopback still works."""

    def __init__(self, app: ASGIApp, *, max_age: int) -> None:
        key = secrets.token_urlsafe(32)
        options: dict[str, Any] = {"session_cookie": SESSION_COOKIE, "max_age": max_age, "same_site": "strict"}
        self._plain = SessionMiddleware(app, key, **options)
        self._secure = SessionMiddleware(app, key, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self._secure if scope.get("scheme") in ("https", "wss") else self._plain
        await chosen(scope, receive, send)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_ok(session: Mapping[str, Any], form: FormData) -> bool:
    expected = session.get("csrf")
    given = form.get(CSRF_FIELD)
    return isinstance(expected, str) and isinstance(given, str) and secrets.compare_digest(expected, given)


def token_ok(expected: str | None, given: str) -> bool:
    """No token configured (loopback): anyone on this machine may log in, as with the intake."""
    return expected is None or secrets.compare_digest(expected.encode(), given.encode())


def start_session(session: dict[str, Any], operator: str) -> None:
    session.clear()
    session["operator"] = operator
    session["csrf"] = secrets.token_urlsafe(32)  # a new token with the login: nothing from before it still works


def clean_name(raw: str) -> str | None:
    """An operator's name fit for the ledger: printable, 1 to 100 characters; None otherwise."""
    name = " ".join(raw.split())
    return name if 0 < len(name) <= MAX_NAME and name.isprintable() else None


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never `//elsewhere` or a full URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@dataclass
class Visit:
    """One authenticated request, as a handler sees it."""

    request: Request
    operator: str
    origin: Literal["console", "api"]
    form: FormData = field(default_factory=FormData)

    @property
    def session(self) -> dict[str, Any]:
        return self.request.session

    def param(self, name: str, default: str = "") -> str:
        """A form field (POST) or query parameter (GET)."""
        value = self.form.get(name) if self.request.method not in _SAFE_METHODS else self.request.query_params.get(name)
        return value if isinstance(value, str) else default

    def params(self, name: str) -> list[str]:
        source = self.form if self.request.method not in _SAFE_METHODS else self.request.query_params
        return [value for value in source.getlist(name) if isinstance(value, str)]


Handler = Callable[[Visit], Response]


def guarded(handler: Handler, *, token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for `handler`: authenticates, checks CSRF on POST, then runs it on the thread pool (handlers
    read the ledger and the queue, which block)."""

    async def endpoint(request: Request) -> Response:
        unsafe = request.method not in _SAFE_METHODS
        form = await request.form() if unsafe else FormData()
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, given = authorization.partition(" ")
            if token is None or scheme.lower() != "bearer" or not token_ok(token, given.strip()):
                return _unauthorized("the bearer token is wrong (or none is configured)")
            name = clean_name(request.headers.get(OPERATOR_HEADER, "")) or "script"
            return await run_in_threadpool(handler, Visit(request, name, "api", form))
        if unsafe and not csrf_ok(request.session, form):
            return PlainTextResponse(
                "403: refused: this form was not sent from a console page (its CSRF token is missing or wrong)",
                status_code=403,
            )
        operator = request.session.get("operator")
        if not isinstance(operator, str):
            if not unsafe and "text/html" in request.headers.get("accept", ""):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            return _unauthorized("log in first, or send a bearer token")
        return await run_in_threadpool(handler, Visit(request, operator, "console", form))

    return endpoint


def _unauthorized(reason: str) -> Response:
    return PlainTextResponse(f"401: {reason}", status_code=401, headers={"WWW-Authenticate": "Bearer"})
