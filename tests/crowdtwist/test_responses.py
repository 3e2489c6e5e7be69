"""The status-code table: every CrowdTwist answer maps to exactly one outcome or exception class."""

from __future__ import annotations

import json

import pytest

from crowdtwist_client.responses import THIRD_PARTY_ID_TAKEN, error_for
from crowdtwist_client.sandbox.state import MAINTENANCE_PAGE
from sync_worker.core.errors import (
    AlreadyExists,
    CtSyncError,
    DataRejected,
    NotAuthorized,
    PermanentError,
    RateLimited,
    TransientError,
)


def _body(message: str, code: str = "invalid_request") -> bytes:
    return json.dumps({"error": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "operation", "expected", "message"),
    [
        (400, _body("Email Address is already taken"), "create_user", DataRejected, "Email Address is already taken"),
        (422, _body("Last Name is required"), "update_user", DataRejected, "Last Name is required"),
        (409, _body("Conflict"), "update_user", DataRejected, "Conflict"),
        (409, _body("Conflict"), "create_user", AlreadyExists, "Conflict"),
        (400, _body(THIRD_PARTY_ID_TAKEN), "create_user", AlreadyExists, THIRD_PARTY_ID_TAKEN),
        (401, _body("bad key", "unauthorized"), "get_user", NotAuthorized, "HTTP 401: bad key"),
        (403, _body("revoked", "forbidden"), "update_user", NotAuthorized, "HTTP 403: revoked"),
        (429, b"", "update_user", RateLimited, "rate limited: no body"),
        (500, _body("boom", "internal_error"), "get_user", TransientError, "HTTP 500: boom"),
        (502, b"Bad gateway", "get_user", TransientError, "HTTP 502: Bad gateway"),
        (503, MAINTENANCE_PAGE, "create_user", TransientError, "HTTP 503: CrowdTwist answered with an HTML page"),
        (400, b"<html>oops</html>", "create_user", PermanentError, "HTTP 400: CrowdTwist answered with an HTML page"),
        (405, _body("Method not allowed"), "get_user", PermanentError, "HTTP 405: Method not allowed"),
    ],
)
def test_status_table(status: int, body: bytes, operation: str, expected: type[CtSyncError], message: str) -> None:
    error = error_for(status, {}, body, operation=operation)
    assert type(error) is expected
    assert error is not None
    assert error.message.startswith(message)
    assert error.status_code == status


@pytest.mark.parametrize("status", [200, 201, 204, 404])
def test_success_and_not_found_are_not_errors(status: int) -> None:
    assert error_for(status, {}, b"{}", operation="get_user") is None


def test_the_pos_host_envelope_is_understood() -> None:
    body = json.dumps({"system": "pos", "reason": "not_unique", "description": "Receipt already exists"}).encode()
    error = error_for(400, {}, body, operation="purchases")
    assert isinstance(error, DataRejected)
    assert error.message == "Receipt already exists"


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0.5", 0.5), ("Wed, 21 Oct 2026 07:28:00 GMT", None)])
def test_retry_after_is_honoured_when_numeric(header: str, expected: float | None) -> None:
    error = error_for(429, {"retry-after": header}, b"", operation="get_user")
    assert isinstance(error, RateLimited)
    assert error.retry_after == expected
