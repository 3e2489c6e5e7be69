"""The console's ASGI app: routes, sessions, security headers, and one page for a system that cannot be reached.
`sync_worker.http` serves it (`ct-sync console`, the demo).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_worker.console import actions, pages
from sync_worker.console.backend import ConsoleBackend
from sync_worker.console.login import login
from sync_worker.console.rendering import ConsoleContext, make_templates, render_page
from sync_worker.console.security import Handler, SessionsByScheme, guarded
from sync_worker.core.errors import CtSyncError

STATIC = Path(__file__).parent / "static"

# No script runs on these pages, no page may frame them, and forms go nowhere but here; nothing is cached.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, send_with_headers)


def create_console_app(backend: ConsoleBackend, *, token: str | None, session_lifetime: timedelta) -> Starlette:
    def page(path: str, handler: Handler, *, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, guarded(handler, token=token), methods=list(methods))

    acting = ("GET", "POST")  # GET shows the confirmation, POST does it
    routes: list[BaseRoute] = [
        Route("/login", login, methods=["GET", "POST"]),
        page("/", pages.overview),
        page("/failures", pages.failures),
        page("/member", pages.member),
        page("/dead-letters", pages.dead_letters),
        page("/jobs", pages.jobs),
        page("/jobs/run", pages.job_run),
        page("/member/resubmit", actions.resubmit_member, methods=acting),
        page("/resubmit", actions.resubmit_by_status, methods=acting),
        page("/dead-letters/replay", actions.replay_letters, methods=acting),
        page("/dead-letters/discard", actions.discard_letters, methods=acting),
        page("/logout", actions.logout, methods=("POST",)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionsByScheme, max_age=int(session_lifetime.total_seconds())),
        ],
        exception_handlers={CtSyncError: _unavailable},
    )
    app.state.console = ConsoleContext(backend=backend, templates=make_templates(), token=token)
    return app


async def _unavailable(request: Request, exc: Exception) -> Response:
    """A system the page needed could not be reached: say which, and that nothing was done."""
    assert isinstance(exc, CtSyncError)
    operator = request.session.get("operator")
    message = f"{exc.system or 'a system'} unreachable: {exc.message}"
    return render_page(request, "error.html", http_status=503, operator=operator, message=message)
