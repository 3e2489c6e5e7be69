"""The sandbox's switches and counters: `Faults` (outages, latency, the rate limit), `Rules` (what CrowdTwist does
where nothing published says, so tests run every way) and `Counters` (what a test or benchmark reads back)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.crowdtwist import guesses


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
class Rules:
    """One switch per unpublished behaviour; the defaults are the guesses."""

    # A create whose third_party_id is taken: refused (the guess), or a second user is made.
    duplicate_third_party_id: Literal["refuse", "accept"] = "refuse"
    # When both the email and the third_party_id are taken, the email's refusal comes first.
    email_checked_first: bool = guesses.EMAIL_CHECKED_FIRST
    # The words of the refusal of a taken third_party_id.
    third_party_id_taken: str = guesses.THIRD_PARTY_ID_TAKEN
    # Unknown request fields: counted and ignored, or (strict) refused with 400.
    strict_fields: bool = False
    deletion_step_seconds: float = guesses.DELETION_STEP_SECONDS
    # Lists answered as a bare list, or as an object holding it under `guesses.LIST_KEY` (both are published).
    list_shape: Literal["list", "object"] = "list"

    def checked(self) -> Rules:
        if self.duplicate_third_party_id not in ("refuse", "accept"):
            raise ValueError("duplicate_third_party_id must be 'refuse' or 'accept'")
        if self.list_shape not in ("list", "object"):
            raise ValueError("list_shape must be 'list' or 'object'")
        if self.deletion_step_seconds < 0:
            raise ValueError("deletion_step_seconds must not be negative")
        return self


@dataclass
class Counters:
    calls: Counter[str] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    updates: Counter[str] = field(default_factory=Counter)  # accepted updates, by the user's third_party_id
    unknown_fields: Counter[str] = field(default_factory=Counter)
    requests_with_cookies: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "creates": sum(self.creates.values()),
            "max_creates_per_third_party_id": max(self.creates.values(), default=0),
            "updates": sum(self.updates.values()),
            "updates_per_third_party_id": dict(self.updates),
            "unknown_fields": dict(self.unknown_fields),
            "requests_with_cookies": self.requests_with_cookies,
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
        }
