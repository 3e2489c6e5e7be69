"""The CrowdTwist emulator's state and rules: users, documented validation, a leaky-bucket limit, fault switches,
and counters a test or benchmark reads. Pure and thread-safe; the HTTP fronts live beside it.

Faithful to crowdtwist-api.md: create answers 200 with the full user object; unknown users 404 with the
`{"error", "message"}` envelope; a taken email and name-rule violations 400 with that envelope; over the limit 429
until the bucket drains; maintenance is a 503 HTML page. Where the sources are silent the choice is marked (guess).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from crowdtwist_client.responses import THIRD_PARTY_ID_TAKEN

MAINTENANCE_PAGE = b"<html><head><title>Maintenance</title></head><body><h1>We'll be right back</h1></body></html>"
_NAME_PUNCTUATION = frozenset(" -’_@.,")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_US_POSTAL = re.compile(r"^\d{5}(?:-?\d{4})?$")
_CA_POSTAL = re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$")
_USER_PATH = re.compile(r"^/v2/users/([^/]+)$")
_DELETION_PATH = re.compile(r"^/v2/(?:users/delete|user_deletion)/(\d+)$")
_READ_PATH = re.compile(
    r"^/v2(?:\.\d)?/users/([^/]+)/(activities|activity_history|rewards|redemption_history|receipts)$"
)
_ID_TYPES = ("id", "third_party_id", "email", "username", "mobile_phone_number")
_ALLOWED_FIELDS = frozenset(
    {
        "third_party_id", "first_name", "last_name", "middle_name", "email_address", "email_is_verified",
        "postal_code", "country_code", "city_id", "city_name", "date_of_birth", "mobile_phone_number", "lang_pref",
        "gender_id", "receive_email_updates", "is_active", "remove_points", "username",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0  # seconds the front waits before answering (latency, hangs)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Faults:
    """Run-time switches. Rates are probabilities per request."""

    latency: float = 0.0
    down: bool = False
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    commit_then_timeout_rate: float = 0.0
    hang_seconds: float = 65.0
    rate_limit_per_minute: float | None = None


@dataclass
class Counters:
    calls: Counter[str] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "creates": sum(self.creates.values()),
            "max_creates_per_third_party_id": max(self.creates.values(), default=0),
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
        }


def _json(status: int, document: Any, **extra: Any) -> Answer:
    return Answer(status, json.dumps(document, separators=(",", ":")).encode(), **extra)


def _error(status: int, code: str, message: str) -> Answer:
    return _json(status, {"error": code, "message": message})


class SandboxState:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._api_key = api_key
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.faults = Faults()
        self.counters = Counters()
        self._users: dict[int, dict[str, Any]] = {}
        self._by_third_party_id: dict[str, int] = {}
        self._by_email: dict[str, int] = {}
        self._deletions: dict[int, dict[str, Any]] = {}
        self._next_id = 100_000
        self._bucket_level = 0.0
        self._bucket_at = clock()

    # -- control -------------------------------------------------------------------------------------------------

    def set_faults(self, **switches: Any) -> None:
        with self._lock:
            for name, value in switches.items():
                if not hasattr(self.faults, name):
                    raise ValueError(f"unknown fault switch {name!r}")
                setattr(self.faults, name, value)

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.counters = Counters()
            self._users.clear()
            self._by_third_party_id.clear()
            self._by_email.clear()
            self._deletions.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counters.snapshot(), "users": len(self._users), "faults": asdict(self.faults)}

    def user(self, third_party_id: str) -> dict[str, Any] | None:
        with self._lock:
            user_id = self._by_third_party_id.get(third_party_id)
            return dict(self._users[user_id]) if user_id is not None else None

    def users_with_third_party_id(self, third_party_id: str) -> int:
        with self._lock:
            return sum(1 for user in self._users.values() if user.get("third_party_id") == third_party_id)

    # -- one request ---------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Answer:
        if path.startswith("/_sandbox/"):
            return self._control(method, path, body)
        operation = _operation(method, path)
        with self._lock:
            self.counters.calls[operation] += 1
            faults = self.faults
            if faults.down:
                self.counters.server_errors += 1
                return Answer(503, MAINTENANCE_PAGE, content_type="text/html")
            if not self._admit():
                self.counters.rate_limited += 1
                return _error(429, "rate_limit_exceeded", "Too Many Requests")
            roll = self._rng.random()
            if roll < faults.error_rate:
                self.counters.server_errors += 1
                return _error(500, "internal_error", "Internal error")
            if roll < faults.error_rate + faults.timeout_rate:
                self.counters.timeouts += 1
                gateway_timeout = _error(504, "timeout", "Gateway timeout")
                return Answer(504, gateway_timeout.body, delay=faults.hang_seconds)
            if not self._authorized(query, headers):
                return _error(403, "invalid_api_key", "Invalid API key")
            answer = self._route(method, path, query, body)
            if (
                operation == "create_user"
                and answer.status == 200
                and self._rng.random() < faults.commit_then_timeout_rate
            ):
                self.counters.timeouts += 1
                return Answer(answer.status, answer.body, delay=faults.hang_seconds)  # stored, but too late
            if faults.latency:
                return Answer(answer.status, answer.body, answer.content_type, delay=faults.latency)
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

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        if path == "/v2/users" and method == "POST":
            return self._create(body)
        if match := _USER_PATH.match(path):
            user_id = self._find(unquote(match.group(1)), query.get("id_type", "id"))
            if method == "GET":
                return self._found(user_id)
            if method == "PUT":
                return self._update(user_id, body)
            if method == "DELETE":
                return self._delete(user_id)
        if (match := _DELETION_PATH.match(path)) and method == "GET":
            deletion = self._deletions.get(int(match.group(1)))
            return _json(200, deletion) if deletion else _error(404, "user_not_found", "User not found")
        if (match := _READ_PATH.match(path)) and method == "GET":
            return _json(200, []) if self._find(unquote(match.group(1)), "id") else _user_not_found()
        return _error(404, "page_not_found", "Page not found")

    def _find(self, value: str, id_type: str) -> int | None:
        if id_type == "third_party_id":
            return self._by_third_party_id.get(value)
        if id_type == "email":
            return self._by_email.get(value.lower())
        if id_type == "id" and value.isdigit():
            return int(value) if int(value) in self._users else None
        if id_type in _ID_TYPES:
            return next((uid for uid, user in self._users.items() if str(user.get(id_type)) == value), None)
        return None

    def _found(self, user_id: int | None) -> Answer:
        return _json(200, self._users[user_id]) if user_id is not None else _user_not_found()

    def _create(self, body: bytes) -> Answer:
        fields, problem = _decode(body)
        if problem:
            return problem
        for required, label in (("first_name", "First Name"), ("last_name", "Last Name"), ("email_address", "Email")):
            if not fields.get(required):
                return _error(400, "invalid_request", f"{label} is required")
        third_party_id = fields.get("third_party_id")
        if third_party_id is not None and str(third_party_id) in self._by_third_party_id:
            return _error(400, "invalid_request", THIRD_PARTY_ID_TAKEN)
        problem = self._validate(fields, user_id=None)
        if problem:
            return problem
        self._next_id += 1
        now = int(time.time())
        user = {
            "id": self._next_id,
            **{key: value for key, value in fields.items() if key not in ("is_active", "remove_points")},
            "is_active": 1,
            "total_points": 0,
            "redeemable_points": 0,
            "date_created": now,
            "date_last_updated": now,
            "tier_info": None,
            "segments": [],
            "custom_data": {},
        }
        self._store(user)
        if third_party_id is not None:
            self.counters.creates[str(third_party_id)] += 1
        return _json(200, user)

    def _update(self, user_id: int | None, body: bytes) -> Answer:
        if user_id is None:
            return _user_not_found()
        fields, problem = _decode(body)
        if problem:
            return problem
        new_third_party_id = fields.get("third_party_id")
        owner = self._by_third_party_id.get(str(new_third_party_id)) if new_third_party_id is not None else None
        if owner is not None and owner != user_id:
            return _error(400, "invalid_request", THIRD_PARTY_ID_TAKEN)
        problem = self._validate(fields, user_id=user_id)
        if problem:
            return problem
        user = {**self._users[user_id], **fields, "date_last_updated": int(time.time())}
        user.pop("remove_points", None)
        self._unindex(self._users[user_id])
        self._store(user)
        return _json(200, user)

    def _delete(self, user_id: int | None) -> Answer:
        if user_id is None:
            return _user_not_found()
        user = self._users.pop(user_id)
        self._unindex(user)
        self._deletions[user_id] = {
            "user_id": user_id,
            "initiated_by": "api",
            "status": "Deletion_initiated",
            "status_history": [{"status": "Deletion_initiated", "date": int(time.time())}],
        }
        return _json(200, {"user_id": user_id, "status": "Queued"})

    def _validate(self, fields: dict[str, Any], *, user_id: int | None) -> Answer | None:
        for key, label in (("first_name", "First Name"), ("last_name", "Last Name"), ("middle_name", "Middle Name")):
            value = fields.get(key)
            if value is not None and not _valid_name(str(value)):
                return _error(400, "invalid_request", f"{label} contains invalid characters")
        email = fields.get("email_address")
        if email is not None:
            if not _EMAIL.match(str(email)):
                return _error(400, "invalid_request", "Email Address is invalid")
            owner = self._by_email.get(str(email).lower())
            if owner is not None and owner != user_id:
                return _error(400, "invalid_request", "Email Address is already taken")
        current = self._users.get(user_id, {}) if user_id is not None else {}
        country = str(fields.get("country_code", current.get("country_code")) or "").upper()
        postal_code = fields.get("postal_code")
        if postal_code is not None and country == "US" and not _US_POSTAL.match(str(postal_code)[:10]):
            return _error(400, "invalid_request", "Postal Code is invalid")
        if postal_code is not None and country == "CA" and not _CA_POSTAL.match(str(postal_code)):
            return _error(400, "invalid_request", "Postal Code is invalid")
        if "country_code" in fields and country not in ("US", "CA", "") and fields.get("city_id") is None:
            return _error(400, "invalid_request", "City is required")
        for key in ("date_of_birth", "gender_id", "city_id", "is_active", "email_is_verified"):
            if key in fields and fields[key] is not None and not isinstance(fields[key], int):
                return _error(400, "invalid_request", f"{key} must be a number")
        return None

    def _store(self, user: dict[str, Any]) -> None:
        self._users[user["id"]] = user
        if user.get("third_party_id") is not None:
            self._by_third_party_id[str(user["third_party_id"])] = user["id"]
        if user.get("email_address"):
            self._by_email[str(user["email_address"]).lower()] = user["id"]

    def _unindex(self, user: dict[str, Any]) -> None:
        if user.get("third_party_id") is not None:
            self._by_third_party_id.pop(str(user["third_party_id"]), None)
        if user.get("email_address"):
            self._by_email.pop(str(user["email_address"]).lower(), None)

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        if path == "/_sandbox/stats" and method == "GET":
            return _json(200, self.stats())
        if path == "/_sandbox/reset" and method == "POST":
            self.reset()
            return _json(200, {"reset": True})
        if path == "/_sandbox/reset-counters" and method == "POST":
            with self._lock:
                self.counters = Counters()
            return _json(200, {"reset": "counters"})
        if path == "/_sandbox/faults" and method == "POST":
            switches, problem = _decode(body, allowed=None)
            if problem:
                return problem
            try:
                self.set_faults(**switches)
            except ValueError as exc:
                return _error(400, "invalid_request", str(exc))
            return _json(200, asdict(self.faults))
        return _error(404, "page_not_found", "Page not found")


def _operation(method: str, path: str) -> str:
    if path == "/v2/users":
        return "create_user" if method == "POST" else f"{method.lower()}_users"
    if _USER_PATH.match(path):
        return {"GET": "get_user", "PUT": "update_user", "DELETE": "delete_user"}.get(method, method.lower())
    if _DELETION_PATH.match(path):
        return "deletion_status"
    if match := _READ_PATH.match(path):
        return match.group(2)
    return "other"


def _decode(body: bytes, *, allowed: frozenset[str] | None = _ALLOWED_FIELDS) -> tuple[dict[str, Any], Answer | None]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}, _error(400, "invalid_request", "Request body is not valid JSON")
    if not isinstance(document, dict):
        return {}, _error(400, "invalid_request", "Request body must be a JSON object")
    unknown = set(document) - allowed if allowed is not None else set()
    if unknown:
        return {}, _error(400, "invalid_request", f"Unknown field {sorted(unknown)[0]}")
    return document, None


def _valid_name(value: str) -> bool:
    return all(char.isalpha() or char.isdigit() or char in _NAME_PUNCTUATION for char in value)


def _user_not_found() -> Answer:
    # The 404 envelope's code for users is not published (guess); the shape is the documented one.
    return _error(404, "user_not_found", "User not found")
