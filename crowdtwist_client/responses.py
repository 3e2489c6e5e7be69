"""CrowdTwist answers → outcomes or exceptions: the one table that decides what a status code means.

    2xx                              ok
    404                              not found: a value (None) for look-ups and updates, never an error
    400 / 409 / 422 with a JSON body DataRejected, CrowdTwist's `message` kept verbatim
      … "already taken" third_party_id, or 409 on create   AlreadyExists (the worker updates instead)
    401 / 403                        NotAuthorized: the key, not the member
    429                              RateLimited, with Retry-After when CrowdTwist sends one
    5xx, HTML maintenance pages      TransientError
    other 4xx                        PermanentError (a bug on our side: never retried, never blamed on data)

Pure: takes status, headers and body; never sees a URL, so no message can carry the API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from config.redaction import redact_text
from sync_worker.core.errors import (
    AlreadyExists,
    CtSyncError,
    DataRejected,
    NotAuthorized,
    PermanentError,
    RateLimited,
    TransientError,
)

SYSTEM = "crowdtwist"
# CrowdTwist does not document its answer to a create with a taken third_party_id (guess): the sandbox answers
# 400 with this message, and any message naming the third party id as taken or existing is read the same way.
THIRD_PARTY_ID_TAKEN = "Third Party Id is already taken"
_EXCERPT = 200


def parse_json(body: bytes) -> Any:
    """The JSON document, or None for an empty or non-JSON body (maintenance pages are HTML)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def error_for(status: int, headers: Mapping[str, str], body: bytes, *, operation: str) -> CtSyncError | None:
    """None for 2xx and 404; otherwise the exception this answer means."""
    if 200 <= status < 300 or status == 404:
        return None
    document = parse_json(body)
    message = _message(document, body)
    if status == 429:
        return RateLimited(
            f"rate limited: {message}", retry_after=_retry_after(headers), system=SYSTEM, operation=operation
        )
    if status in (401, 403):
        return NotAuthorized(f"HTTP {status}: {message}", system=SYSTEM, operation=operation, status_code=status)
    if status >= 500:
        # 503 is maintenance: nothing was processed. Other 5xx may have been answered after the write was applied.
        return TransientError(
            f"HTTP {status}: {message}",
            system=SYSTEM,
            operation=operation,
            status_code=status,
            outcome_unknown=status != 503,
        )
    if status in (400, 409, 422) and isinstance(document, dict):
        if _already_exists(status, message, operation=operation):
            return AlreadyExists(message, system=SYSTEM, operation=operation, status_code=status)
        return DataRejected(message, system=SYSTEM, operation=operation, status_code=status)
    return PermanentError(f"HTTP {status}: {message}", system=SYSTEM, operation=operation, status_code=status)


def _message(document: Any, body: bytes) -> str:
    if isinstance(document, dict):
        # Main host: {"error", "message"}; POS host: {"system", "reason", "description", "message"}.
        for key in ("message", "description", "reason", "error"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return redact_text(value.strip())
    if body.lstrip()[:1] == b"<":
        return "CrowdTwist answered with an HTML page (maintenance?)"
    text = body.decode("utf-8", "replace").strip()
    return redact_text(text[:_EXCERPT]) if text else "no body"


def _already_exists(status: int, message: str, *, operation: str) -> bool:
    if operation != "create_user":
        return False
    lowered = message.lower()
    names_third_party_id = "third party id" in lowered or "third_party_id" in lowered
    return status == 409 or (names_third_party_id and ("taken" in lowered or "exist" in lowered))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: CrowdTwist never sent one; our own backoff applies
