"""CrowdTwist answers → outcomes or exceptions: the one table that decides what a status code means.

    2xx with a JSON body             ok
    2xx with any other body          TransientError: a proxy's or maintenance page, not CrowdTwist's answer
    404                              not found: a value (None) for look-ups and updates, never an error
    400 / 409 / 422 with a JSON body DataRejected, CrowdTwist's `message` kept verbatim
      … on create, naming the third_party_id as taken in any wording, or 409   AlreadyExists (update instead)
    401 / 403                        NotAuthorized: the key, not the member
    429                              RateLimited, with Retry-After when CrowdTwist sends one
    5xx, HTML maintenance pages      TransientError
    other 4xx                        PermanentError (a bug on our side: never retried, never blamed on data)

CrowdTwist does not publish its words for a taken third_party_id, so no single sentence is trusted: the code and the
message are read together, and any that name the third party id with "taken", "already", "exists", "unique" (or
"not unique"), "duplicate" or "in use" mean AlreadyExists.

Pure: takes status, headers and body; never sees a URL, so no message can carry the API key.
"""

from __future__ import annotations

import json
import re
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
_EXCERPT = 200
_NOT_JSON = object()
_THIRD_PARTY_ID = re.compile(r"\bthird ?party ?id\b")
_TAKEN = re.compile(r"\b(taken|already|exists?|unique|duplicated?|in use)\b")
_ABSENT = re.compile(r"\b(does not|doesn't|not) exists?\b")


def decode(body: bytes) -> Any:
    """The JSON document; `_NOT_JSON` for an empty or non-JSON body (maintenance pages are HTML)."""
    if not body:
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def _is_json(document: Any) -> bool:
    return document is not _NOT_JSON


def error_for(status: int, headers: Mapping[str, str], body: bytes, *, operation: str) -> CtSyncError | None:
    """None for a readable 2xx and for 404; otherwise the exception this answer means."""
    if status == 404:
        return None
    document = decode(body)
    if 200 <= status < 300:
        if _is_json(document):
            return None
        # Not CrowdTwist's JSON: a gateway's page. Never read as "not found" (that would create); a write behind it
        # may have been applied, so its outcome is unknown.
        return TransientError(
            f"CrowdTwist answered HTTP {status} without a JSON body",
            system=SYSTEM,
            operation=operation,
            status_code=status,
            outcome_unknown=True,
        )
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
        if operation == "create_user" and (status == 409 or third_party_id_taken(document)):
            return AlreadyExists(message, system=SYSTEM, operation=operation, status_code=status)
        return DataRejected(message, system=SYSTEM, operation=operation, status_code=status)
    return PermanentError(f"HTTP {status}: {message}", system=SYSTEM, operation=operation, status_code=status)


def says_user_does_not_exist(body: bytes) -> bool:
    """Whether a 404 is CrowdTwist's own answer to a look-up of an unknown user (captured:
    `{"error": "page_not_found", "message": "User does not exist."}`), not another server's or another path's."""
    document = decode(body)
    if not isinstance(document, dict) or document.get("error") != "page_not_found":
        return False
    message = str(document.get("message", "")).lower()
    return "user" in message and bool(_ABSENT.search(message))


def third_party_id_taken(document: Mapping[str, Any]) -> bool:
    """Whether an error envelope (either host's) says the third_party_id is taken, in any wording."""
    words = " ".join(str(value) for value in document.values() if isinstance(value, str))
    text = re.sub(r"[\s_\-]+", " ", words.lower())
    return bool(_THIRD_PARTY_ID.search(text) and _TAKEN.search(text) and not _ABSENT.search(text))


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


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: CrowdTwist never sent one; our own backoff applies
