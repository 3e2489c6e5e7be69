"""The sandbox's routes: which CrowdTwist operation a method and path name, and the paging of list endpoints.

Both forms of a path are routed, with and without the trailing slash: Oracle's own "User Profile" call ends with
one (`/v2/users/{id}/?id_type=…`), its "User Update" does not. Versions are per resource, as published: a list
served under `/v2.1` is not found under `/v2`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.crowdtwist import guesses


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    page_size_max: int | None = None  # a paged list: the documented maximum page_size

    @property
    def paged(self) -> bool:
        return self.page_size_max is not None


def _route(operation: str, method: str, pattern: str, page_size_max: int | None = None) -> Route:
    return Route(operation, method, re.compile(f"^{pattern}$"), page_size_max)


_USER = r"/users/([^/]+)"
ROUTES = (
    _route("create_user", "POST", "/v2/users"),
    _route("deletion_status", "GET", r"/v2/(?:users/delete|user_deletion)/(\d+)"),
    _route("get_user", "GET", f"/v2{_USER}"),
    _route("update_user", "PUT", f"/v2{_USER}"),
    _route("delete_user", "DELETE", f"/v2{_USER}"),
    _route("activities", "GET", f"/v2{_USER}/activities"),
    _route("credit_activity", "POST", f"/v2{_USER}/activities"),
    _route("activity_history", "GET", rf"/v2\.1{_USER}/activity_history", 25),
    _route("activities_extended", "GET", rf"/v2\.1{_USER}/activities/extended", 10),  # "Max is 10" (collection)
    _route("rewards", "GET", rf"/v2\.1{_USER}/rewards", 10),
    _route("redemption_history", "GET", rf"/v2\.2{_USER}/redemption_history", 25),
    _route("receipts", "GET", rf"/v2\.1{_USER}/receipts", 25),  # the client's guess of the receipts path
    # The point-of-sale host's (no version prefix, header auth only): one sandbox serves both hosts.
    _route("purchases", "GET", f"{_USER}/purchases"),
)
POS_OPERATIONS = frozenset({"purchases"})


def normalise(path: str) -> str:
    """One trailing slash is the same resource (the documented look-up has one)."""
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def match(method: str, path: str) -> tuple[Route, str | None] | None:
    """The route and the user (or deletion) segment it captured, still percent-encoded; None: unknown route."""
    path = normalise(path)
    for route in ROUTES:
        if route.method == method and (found := route.pattern.match(path)):
            return route, (found.group(1) if found.groups() else None)
    return None


def page_window(route: Route, query: Mapping[str, str]) -> tuple[int, int] | str:
    """(first index, size) of the requested page, or the refusal's message."""
    assert route.page_size_max is not None
    numbers: dict[str, int] = {}
    for name, default in (("page", 1), ("page_size", guesses.DEFAULT_PAGE_SIZE)):
        text = query.get(name, str(default))
        if not text.isdigit() or int(text) < 1:
            return guesses.BAD_PAGE.format(name=name)
        numbers[name] = int(text)
    size = min(numbers["page_size"], route.page_size_max)  # above the maximum: lowered to it (a guess)
    return (numbers["page"] - 1) * size, size
