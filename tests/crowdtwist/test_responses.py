"""The status-code table: every CrowdTwist answer maps to exactly one outcome or exception class."""

from __future__ import annotations

import json

import pytest

from crowdtwist_client.responses import error_for
from sandbox.crowdtwist.answers import MAINTENANCE_PAGE
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
        (401, _body("bad key", "unauthorized"), "get_user", NotAuthorized, "HTTP 401: bad key"),
        (403, _body("revoked", "forbidden"), "update_user", NotAuthorized, "HTTP 403: revoked"),
        (429, b"", "update_user", RateLimited, "rate limited: no body"),
        (500, _body("boom", "internal_error"), "get_user", TransientError, "HTTP 500: boom"),
        (502, b"Bad gateway", "get_user", TransientError, "HTTP 502: Bad gateway"),
        (503, MAINTENANCE_PAGE, "create_user", TransientError, "HTTP 503: CrowdTwist answered with an HTML page"),
        (400, b"<html>oops</html>", "create_user", PermanentError, "HTTP 400: CrowdTwist answered with an HTML page"),
        (405, _body("Method not allowed"), "get_user", PermanentError, "HTTP 405: Method not allowed"),
        (200, MAINTENANCE_PAGE, "get_user", TransientError, "CrowdTwist answered HTTP 200 without a JSON body"),
        (200, b"", "create_user", TransientError, "CrowdTwist answered HTTP 200 without a JSON body"),
    ],
)
def test_status_table(status: int, body: bytes, operation: str, expected: type[CtSyncError], message: str) -> None:
    error = error_for(status, {}, body, operation=operation)
    assert type(error) is expected
    assert error is not None
    assert error.message.startswith(message)
    assert error.status_code == status


@pytest.mark.parametrize(("status", "body"), [(200, b"{}"), (201, b"[]"), (204, b"null"), (404, b""), (404, b"<h1/>")])
def test_json_successes_and_not_found_are_not_errors(status: int, body: bytes) -> None:
    assert error_for(status, {}, body, operation="get_user") is None


@pytest.mark.parametrize(
    "answer",
    [
        {"error": "invalid_request", "message": "Third Party Id is already taken"},
        {"error": "invalid_request", "message": "third_party_id already exists"},
        {"error": "invalid_request", "message": "A user with this third party ID already exists."},
        {"error": "invalid_request", "message": "Third party id must be unique"},
        {"error": "invalid_request", "message": "third_party_id is not unique"},
        {"error": "duplicate_third_party_id", "message": "Invalid request"},
        {"error": "invalid_request", "message": "Third-Party ID is in use"},
        {"system": "pos", "reason": "not_unique", "description": "third_party_id"},
    ],
)
def test_every_wording_of_a_taken_third_party_id_is_already_exists_on_create(answer: dict[str, str]) -> None:
    error = error_for(400, {}, json.dumps(answer).encode(), operation="create_user")
    assert isinstance(error, AlreadyExists)


@pytest.mark.parametrize(
    "message",
    [
        "Email Address is already taken",
        "Third Party Id is invalid",
        "Third Party Id is required",
        "User with this third_party_id does not exist",
        "Username already exists",
    ],
)
def test_other_refusals_of_a_create_stay_data_errors(message: str) -> None:
    error = error_for(400, {}, _body(message), operation="create_user")
    assert type(error) is DataRejected
    assert error.message == message


def test_a_taken_third_party_id_outside_a_create_is_a_data_error() -> None:
    error = error_for(400, {}, _body("Third Party Id is already taken"), operation="update_user")
    assert type(error) is DataRejected


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
