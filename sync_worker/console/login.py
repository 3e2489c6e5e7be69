"""The login page: the operator's name (for the ledger) and, when one is configured, the console token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from sync_worker.console.rendering import context_of, render_page
from sync_worker.console.security import MAX_NAME, clean_name, csrf_ok, safe_next, start_session, token_ok


async def login(request: Request) -> Response:
    token = context_of(request).token
    if request.method == "GET":
        return _form(request, next_path=safe_next(request.query_params.get("next")), token_required=token is not None)
    form = await request.form()
    if not csrf_ok(request.session, form):
        return PlainTextResponse("403: refused: this login form was not sent from the login page", status_code=403)
    next_path = safe_next(str(form.get("next", "")))
    name = clean_name(str(form.get("operator", "")))
    problem = None
    if name is None:
        problem = f"Your name is needed for the record of what you do: 1 to {MAX_NAME} printable characters."
    elif not token_ok(token, str(form.get("token", ""))):
        problem = "That token is not the console's token."
    if problem is not None or name is None:
        return _form(request, next_path=next_path, token_required=token is not None, problem=problem, http_status=401)
    start_session(request.session, name)
    return RedirectResponse(next_path, status_code=303)


def _form(
    request: Request, *, next_path: str, token_required: bool, problem: str | None = None, http_status: int = 200
) -> Response:
    return render_page(
        request,
        "login.html",
        http_status=http_status,
        next_path=next_path,
        token_required=token_required,
        problem=problem,
    )
