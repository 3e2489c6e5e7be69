"""The CrowdTwist emulator's state: users, their deletions and history lists, the rules CrowdTwist does not publish
(as switches), a leaky-bucket limit, fault switches, and counters a test or benchmark reads. Pure and thread-safe;
the HTTP fronts live beside it.

Faithful to the docs and to Oracle's captured calls (tests/fixtures/crowdtwist/): create answers 200 with the full
user object (and sets session cookies); unknown users are 404 `page_not_found` "User does not exist."; refusals are
400 with the `{"error", "message"}` envelope; a wrong key is 403; over the limit every request is 429 until the
bucket drains; maintenance is a 503 HTML page; deletion is asynchronous and advances on the sandbox clock. What is
guessed lives in `guesses`; where CrowdTwist's behaviour is unknown and matters, `Rules` makes it a switch.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import unquote

from sandbox.crowdtwist import guesses, routes, validation
from sandbox.crowdtwist.answers import (
    MAINTENANCE_PAGE,
    Answer,
    decode_object,
    error,
    iso_time,
    json_answer,
    pos_error,
    refused,
    unknown_route,
    user_not_found,
)
from sandbox.crowdtwist.switches import Counters, Faults, Rules
from sandbox.crowdtwist.user_object import render

INACTIVE_WITH_POINTS = "Member is inactive but has redeemable points"
DELETION_STAGES = ("Deletion_initiated", "Deletion_in_progress", "Deletion_completed")
_ID_TYPES = ("id", "third_party_id", "email", "username", "mobile_phone_number")
# Host-only and not `secure`, unlike the real ones, so that a client keeping cookies would send them back here.
_SESSION_COOKIE = "ct_sandbox_session={token}; Max-Age=31536000; path=/; SameSite=None"


@dataclass
class _Deletion:
    user_id: int
    requested_at: float
    initiated_by: str = guesses.DELETION_INITIATED_BY


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class SandboxState:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        rules: Rules | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._api_key = api_key
        self._initial_rules = (rules or Rules()).checked()
        self._clock = clock  # the leaky bucket's
        self._wall_clock = wall_clock  # epoch stamps and deletion progress, moved on by `advance`
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.faults = Faults()
        self.rules = replace(self._initial_rules)
        self.counters = Counters()
        self._clock_offset = 0.0
        self._users: dict[int, dict[str, Any]] = {}
        self._by_third_party_id: dict[str, list[int]] = {}  # creation order: a look-up finds the first
        self._by_email: dict[str, int] = {}
        self._deletions: dict[int, _Deletion] = {}
        self._deleting: set[int] = set()  # requested, not yet completed
        self._lists: dict[int, dict[str, list[dict[str, Any]]]] = {}  # user id → operation → items
        self._next_id = 100_000
        self._bucket_level = 0.0
        self._bucket_at = clock()

    # -- control -------------------------------------------------------------------------------------------------

    def set_faults(self, **switches: Any) -> None:
        with self._lock:
            self.faults = self._switched(self.faults, switches, "fault switch")

    def set_rules(self, **switches: Any) -> None:
        with self._lock:
            self.rules = self._switched(self.rules, switches, "rule").checked()

    @staticmethod
    def _switched(current: Any, switches: dict[str, Any], kind: str) -> Any:
        known = {item.name for item in fields(current)}
        for name in switches:
            if name not in known:
                raise ValueError(f"unknown {kind} {name!r}")
        return replace(current, **switches)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock on (deletions progress by it), without waiting."""
        with self._lock:
            self._clock_offset += seconds

    def add_list_items(self, ct_user_id: int, operation: str, items: list[dict[str, Any]]) -> None:
        """Seed a user's list endpoint (`activity_history`, `rewards`, …) with items, served back page by page."""
        with self._lock:
            if ct_user_id not in self._users:
                raise ValueError(f"no user {ct_user_id}")
            self._lists.setdefault(ct_user_id, {}).setdefault(operation, []).extend(items)

    def reset(self) -> None:
        """Back to the state just after construction: no users, no faults, the constructor's rules."""
        with self._lock:
            self.faults = Faults()
            self.rules = replace(self._initial_rules)
            self.counters = Counters()
            self._clock_offset = 0.0
            for table in (self._users, self._by_third_party_id, self._by_email, self._deletions, self._lists):
                table.clear()
            self._deleting.clear()

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = Counters()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.counters.snapshot(),
                "users": len(self._users),
                "faults": asdict(self.faults),
                "rules": asdict(self.rules),
            }

    def user(self, third_party_id: str) -> dict[str, Any] | None:
        """The user as a look-up by third_party_id would answer it, or None."""
        with self._lock:
            self._complete_deletions()
            user_id = self._find(third_party_id, "third_party_id")
            return render(self._users[user_id], lookup=True) if user_id is not None else None

    def users_with_third_party_id(self, third_party_id: str) -> int:
        with self._lock:
            self._complete_deletions()
            return len(self._by_third_party_id.get(third_party_id, ()))

    # -- one request ---------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        """One CrowdTwist API request (the `/_sandbox/` control routes are `control.answer`'s)."""
        found = routes.match(method, path)
        operation = found[0].operation if found else "other"
        with self._lock:
            self.counters.calls[operation] += 1
            if "cookie" in headers:
                self.counters.requests_with_cookies += 1
            faults = self.faults
            if faults.down:
                self.counters.server_errors += 1
                return Answer(503, MAINTENANCE_PAGE, content_type="text/html")
            if not self._admit():
                self.counters.rate_limited += 1
                return error(429, "rate_limit_exceeded", "Too Many Requests")
            roll = self._rng.random()
            if roll < faults.error_rate:
                self.counters.server_errors += 1
                return error(500, "internal_error", "Internal error")
            if roll < faults.error_rate + faults.timeout_rate:
                self.counters.timeouts += 1
                gateway_timeout = error(504, "timeout", "Gateway timeout")
                return Answer(504, gateway_timeout.body, delay=faults.hang_seconds)
            if found is not None and found[0].operation in routes.POS_OPERATIONS:
                if "api_key" in query or not self._authorized({}, headers):  # header auth only (seen)
                    return pos_error(403, *guesses.POS_QUERY_KEY_REFUSED)
            elif not self._authorized(query, headers):
                return error(403, *guesses.INVALID_API_KEY)
            self._complete_deletions()
            answer = self._route(found, query, body)
            if (
                operation == "create_user"
                and answer.status == 200
                and self._rng.random() < faults.commit_then_timeout_rate
            ):
                self.counters.timeouts += 1
                return replace(answer, delay=faults.hang_seconds)  # stored, but too late
            if faults.latency:
                return replace(answer, delay=faults.latency)
            return answer

    def _admit(self) -> bool:
        """The leaky bucket: one second of burst, drained at the configured rate; over it, 429 until drained."""
        limit = self.faults.rate_limit_per_minute
        if not limit:
            return True
        now = self._clock()
        drain_per_second = limit / 60.0
        self._bucket_level = max(0.0, self._bucket_level - (now - self._bucket_at) * drain_per_second)
        self._bucket_at = now
        if self._bucket_level + 1 > max(1.0, drain_per_second):
            return False
        self._bucket_level += 1
        return True

    def _authorized(self, query: dict[str, str], headers: dict[str, str]) -> bool:
        if self._api_key is None:
            return True
        header = headers.get("x-ct-authorization", "")
        return query.get("api_key") == self._api_key or header == f"CTApiKey {self._api_key}"

    def _now(self) -> float:
        return self._wall_clock() + self._clock_offset

    def _route(self, found: tuple[routes.Route, str | None] | None, query: dict[str, str], body: bytes) -> Answer:
        if found is None:
            return unknown_route()
        route, segment = found
        if route.operation == "create_user":
            return self._create(body)
        if route.operation == "deletion_status":
            return self._deletion_status(int(segment or 0))
        user_id = self._find(unquote(segment or ""), query.get("id_type", "id"))
        if user_id is None:
            return pos_error(404, *guesses.POS_USER_NOT_FOUND) if route.operation == "purchases" else user_not_found()
        if route.paged:
            return self._page(user_id, route, query)
        match route.operation:
            case "update_user":
                return self._update(user_id, body)
            case "delete_user":
                return self._delete(user_id)
            case "credit_activity":
                return self._credit(user_id, body)
            case "activities" | "purchases":
                return self._list(self._lists.get(user_id, {}).get(route.operation, []))
        return json_answer(200, render(self._users[user_id], lookup=True))  # get_user

    def _find(self, value: str, id_type: str) -> int | None:
        if id_type == "third_party_id":
            holders = self._by_third_party_id.get(value)
            return holders[0] if holders else None
        if id_type == "email":
            return self._by_email.get(value.lower())
        if id_type == "id":
            return int(value) if value.isdigit() and int(value) in self._users else None
        if id_type in _ID_TYPES:
            return next((uid for uid, user in self._users.items() if str(user.get(id_type)) == value), None)
        return None

    # -- users -----------------------------------------------------------------------------------------------------

    def _create(self, body: bytes) -> Answer:
        sent, problem = self._decode(body, allowed=validation.CREATE_FIELDS)
        if problem:
            return problem
        message = validation.missing_on_create(sent)
        if message:
            return refused(message)
        third_party_id = _text(sent.get("third_party_id"))
        email_owner = self._by_email.get(str(sent["email_address"]).lower())
        if self.rules.email_checked_first and email_owner is not None:
            return refused("Email Address is already taken")
        if third_party_id in self._by_third_party_id and self.rules.duplicate_third_party_id == "refuse":
            return refused(self.rules.third_party_id_taken)
        problem = self._invalid(sent, user_id=None)
        if problem:
            return problem
        self._next_id += 1
        now = int(self._now())
        user: dict[str, Any] = {
            "id": self._next_id,
            "is_active": True,
            "email_is_verified": guesses.DEFAULT_EMAIL_IS_VERIFIED,
            "receive_email_updates": guesses.DEFAULT_RECEIVE_EMAIL_UPDATES,
            "total_points": guesses.SIGN_UP_POINTS,
            "redeemable_points": guesses.SIGN_UP_POINTS,
            "date_created": now,
        }
        self._apply(user, sent, now=now)
        self._index(user)
        if third_party_id is not None:
            self.counters.creates[third_party_id] += 1
        cookie = ("set-cookie", _SESSION_COOKIE.format(token=f"{self._rng.getrandbits(64):016x}"))
        return json_answer(200, render(user, lookup=False), headers=(cookie,))

    def _update(self, user_id: int, body: bytes) -> Answer:
        sent, problem = self._decode(body, allowed=validation.UPDATE_FIELDS)
        if problem:
            return problem
        new_third_party_id = _text(sent.get("third_party_id"))
        holders = self._by_third_party_id.get(new_third_party_id or "", [])
        if any(holder != user_id for holder in holders) and self.rules.duplicate_third_party_id == "refuse":
            return refused(self.rules.third_party_id_taken)
        problem = self._invalid(sent, user_id=user_id)
        if problem:
            return problem
        user = self._users[user_id]
        self._unindex(user)
        self._apply(user, sent, now=int(self._now()))
        self._index(user)
        if user.get("third_party_id") is not None:
            self.counters.updates[user["third_party_id"]] += 1
        return json_answer(200, render(user, lookup=False))

    def _invalid(self, sent: dict[str, Any], *, user_id: int | None) -> Answer | None:
        current = self._users.get(user_id, {}) if user_id is not None else {}
        country = str(sent.get("country_code", current.get("country_code")) or "").upper()
        message = validation.refusal(sent, country=country)
        if message:
            return refused(message)
        email = sent.get("email_address")
        owner = self._by_email.get(str(email).lower()) if email is not None else None
        if owner is not None and owner != user_id:
            return refused("Email Address is already taken")
        return None

    @staticmethod
    def _apply(user: dict[str, Any], sent: dict[str, Any], *, now: int) -> None:
        """Store what a create or update sent, as CrowdTwist keeps it (flags as booleans, ids as text)."""
        for key, value in sent.items():
            if key in validation.FLAG_FIELDS:
                user[key] = bool(value)
            elif key == "third_party_id":
                user[key] = _text(value)
            elif key == "password":
                user["password_given"] = True  # never stored, never answered: the real answer says null
            else:
                user[key] = value
        if user.pop("remove_points", False):
            user["redeemable_points"] = 0  # guess: what "remove_points" removes
        user.pop("send_verify_email", None)
        user["date_last_updated"] = now

    def _index(self, user: dict[str, Any]) -> None:
        self._users[user["id"]] = user
        if user.get("third_party_id") is not None:
            holders = self._by_third_party_id.setdefault(user["third_party_id"], [])
            if user["id"] not in holders:
                holders.append(user["id"])
        if user.get("email_address"):
            self._by_email[str(user["email_address"]).lower()] = user["id"]

    def _unindex(self, user: dict[str, Any]) -> None:
        holders = self._by_third_party_id.get(user.get("third_party_id") or "")
        if holders and user["id"] in holders:
            holders.remove(user["id"])
            if not holders:
                del self._by_third_party_id[user["third_party_id"]]
        if user.get("email_address"):
            self._by_email.pop(str(user["email_address"]).lower(), None)

    def _decode(self, body: bytes, *, allowed: frozenset[str]) -> tuple[dict[str, Any], Answer | None]:
        """The fields sent, without the unknown ones (counted; refused in strict mode)."""
        document, problem = decode_object(body)
        if problem:
            return {}, problem
        unknown = sorted(set(document) - allowed)
        self.counters.unknown_fields.update(unknown)
        if unknown and self.rules.strict_fields:
            return {}, refused(f"Unknown field {unknown[0]}")
        return {key: value for key, value in document.items() if key in allowed}, None

    # -- deletion: asynchronous, advancing on the sandbox clock -----------------------------------------------------

    def _delete(self, user_id: int) -> Answer:
        if user_id in self._deleting:
            return refused(guesses.DELETION_ALREADY_REQUESTED)
        user = self._users[user_id]
        if not user["is_active"] and user["redeemable_points"] > 0:
            return refused(INACTIVE_WITH_POINTS)
        self._deletions[user_id] = _Deletion(user_id, self._now())
        self._deleting.add(user_id)
        return json_answer(200, {"user_id": user_id, "status": "Queued"})

    def _stages(self, deletion: _Deletion) -> list[tuple[str, float]]:
        """The stages a deletion has reached by now, with when it reached each."""
        step = self.rules.deletion_step_seconds
        reached = [(stage, deletion.requested_at + index * step) for index, stage in enumerate(DELETION_STAGES)]
        return [(stage, at) for stage, at in reached if at <= self._now()]

    def _complete_deletions(self) -> None:
        """Members stay readable until their deletion completes; then they are gone."""
        for user_id in list(self._deleting):
            if self._stages(self._deletions[user_id])[-1][0] == DELETION_STAGES[-1]:
                self._deleting.discard(user_id)
                self._unindex(self._users.pop(user_id))
                self._lists.pop(user_id, None)

    def _deletion_status(self, user_id: int) -> Answer:
        deletion = self._deletions.get(user_id)
        if deletion is None:
            return user_not_found()
        stages = self._stages(deletion)
        return json_answer(
            200,
            {
                "user_id": user_id,
                "initiated_by": deletion.initiated_by,
                "status": stages[-1][0],
                "status_history": [{"status": stage, "date": iso_time(at)} for stage, at in stages],
            },
        )

    # -- lists -------------------------------------------------------------------------------------------------------

    def _credit(self, user_id: int, body: bytes) -> Answer:
        document, problem = decode_object(body)
        if problem:
            return problem
        points = document.get("num_points")
        if not isinstance(points, int) or isinstance(points, bool):
            return refused("num_points must be a number")
        user = self._users[user_id]
        user["total_points"] += points
        user["redeemable_points"] += points
        item = {"activity_id": document.get("activity_id"), "num_points": points, "date_created": int(self._now())}
        self._lists.setdefault(user_id, {}).setdefault("activity_history", []).append(item)
        return json_answer(200, {"awarded": True})

    def _page(self, user_id: int, route: routes.Route, query: dict[str, str]) -> Answer:
        window = routes.page_window(route, query)
        if isinstance(window, str):
            return refused(window)
        first, size = window
        items = self._lists.get(user_id, {}).get(route.operation, [])
        return self._list(items[first : first + size])  # past the end: an empty list (doc)

    def _list(self, items: list[dict[str, Any]]) -> Answer:
        """A list in the shape the rules say: bare, or held by an object."""
        return json_answer(200, items if self.rules.list_shape == "list" else {guesses.LIST_KEY: items})
