"""Pages from templates: one Jinja2 environment that escapes everything it prints (member data included), the
values every page shows (operator, CSRF token, messages), and the filters the templates use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from sync_worker.console.backend import ConsoleBackend
from sync_worker.console.security import CSRF_FIELD, Visit, csrf_token
from sync_worker.core.dead_letters import shown_safely

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class ConsoleContext:
    """What every request reaches through `request.app.state.console`."""

    backend: ConsoleBackend
    templates: Jinja2Templates
    token: str | None


def make_templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value, in every template: member data is never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = when
    environment.filters["q"] = lambda value: quote(str(value), safe="")
    environment.filters["pretty_json"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str)
    environment.filters["shown"] = shown
    return Jinja2Templates(env=environment)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def shown(value: bytes | str, limit: int) -> str:
    """Content from outside (a dead letter's), control characters escaped and cut; the template escapes the rest."""
    return str(shown_safely(value, limit=limit))


def context_of(request: Request) -> ConsoleContext:
    context: ConsoleContext = request.app.state.console
    return context


def backend_of(visit: Visit) -> ConsoleBackend:
    return context_of(visit.request).backend


def flash(visit: Visit, message: str) -> None:
    """A message for the next page this operator sees."""
    visit.session["flash"] = [*visit.session.get("flash", []), message]


def render(visit: Visit, template: str, *, http_status: int = 200, **values: Any) -> Response:
    return render_page(visit.request, template, http_status=http_status, operator=visit.operator, **values)


def render_page(request: Request, template: str, *, http_status: int = 200, **values: Any) -> Response:
    """The page, with what the layout needs: the operator (if any), the CSRF token, the waiting messages."""
    session: dict[str, Any] = request.session
    values.setdefault("operator", None)
    values.update(
        csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(session),
        flashes=session.pop("flash", []),
        path=request.url.path,
    )
    return context_of(request).templates.TemplateResponse(request, template, values, status_code=http_status)
