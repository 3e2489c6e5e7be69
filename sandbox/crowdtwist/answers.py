"""How the sandbox answers: the `Answer` a front serves, CrowdTwist's envelopes for JSON, refusals, unknown users
and maintenance, and the reading of a request's JSON object."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.crowdtwist import guesses

MAINTENANCE_PAGE = b"<html><head><title>Maintenance</title></head><body><h1>We'll be right back</h1></body></html>"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0  # seconds the front waits before answering (latency, hangs)
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, document: Any, **extra: Any) -> Answer:
    return Answer(status, json.dumps(document, separators=(",", ":")).encode(), **extra)


def error(status: int, code: str, message: str) -> Answer:
    """The main host's error envelope, `{"error", "message"}`."""
    return json_answer(status, {"error": code, "message": message})


def refused(message: str) -> Answer:
    """A 400 refusal of the request's data, worded as CrowdTwist words it."""
    return error(400, guesses.BAD_REQUEST, message)


def pos_error(status: int, reason: str, description: str) -> Answer:
    """The point-of-sale host's error envelope (seen): `{"system", "reason", "description", "message"}`."""
    document = {"system": guesses.POS_SYSTEM, "reason": reason, "description": description, "message": description}
    return json_answer(status, document)


def user_not_found() -> Answer:
    return error(404, "page_not_found", "User does not exist.")


def unknown_route() -> Answer:
    return error(404, "page_not_found", guesses.UNKNOWN_ROUTE)


def iso_time(epoch: float) -> str:
    """CrowdTwist's timestamp text, as in `tier_info.date_assigned` ("2021-09-01T23:11:32Z")."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_object(body: bytes) -> tuple[dict[str, Any], Answer | None]:
    """A request's JSON object, or the refusal to answer instead."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}, refused("Request body is not valid JSON")
    if not isinstance(document, dict):
        return {}, refused("Request body must be a JSON object")
    return document, None
