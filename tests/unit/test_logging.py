"""Logging: secrets are redacted from our lines and from the libraries' lines alike."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from config.logging import configure_logging, redact_secrets
from config.redaction import REDACTED, redact_text

pytestmark = pytest.mark.usefixtures("restore_logging")

API_KEY = "s3cr3t-api-key-0123456789"
URL = f"https://sb-api306.crowdtwist.com/v2/users/296-1?id_type=third_party_id&api_key={API_KEY}"


def test_api_key_in_a_url_is_redacted_from_text() -> None:
    redacted = redact_text(f"GET {URL} failed")
    assert API_KEY not in redacted
    assert f"api_key={REDACTED}" in redacted
    assert "id_type=third_party_id" in redacted


def test_credentials_in_urls_and_auth_headers_are_redacted() -> None:
    text = f"amqp://guest:hunter22@host// and X-CT-Authorization: CTApiKey {API_KEY} and Bearer abcdefgh1234"
    redacted = redact_text(text)
    assert "hunter22" not in redacted
    assert API_KEY not in redacted
    assert "abcdefgh1234" not in redacted
    assert "amqp://guest:" in redacted


def test_redaction_processor_scrubs_values_and_drops_secret_keys() -> None:
    with capture_logs(processors=[redact_secrets]) as captured:
        structlog.get_logger().info("crowdtwist_retry", url=URL, api_key=API_KEY, smtp_password="pw", nested={"u": URL})
    assert captured, "the log line was not captured"
    line = captured[0]
    assert "api_key" not in line
    assert "smtp_password" not in line
    assert API_KEY not in json.dumps(line)
    assert line["url"].endswith(f"api_key={REDACTED}")


def test_stdlib_library_lines_go_through_the_same_redaction() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=True, stream=stream)
    logging.getLogger("httpx").warning("HTTP Request: GET %s %s", URL, '"HTTP/1.1 503 Service Unavailable"')
    output = stream.getvalue()
    assert output, "nothing was logged"
    record = json.loads(output.splitlines()[-1])
    assert API_KEY not in output
    assert record["logger"] == "httpx"
    assert REDACTED in record["event"]


def test_our_lines_are_json_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", stream=stream)
    structlog.get_logger("ct-sync").info("member_synced", member_number="296-1", url=URL)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["event"] == "member_synced"
    assert record["member_number"] == "296-1"
    assert API_KEY not in record["url"]


def test_exception_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", json=True, stream=stream)
    try:
        raise RuntimeError(f"boom at {URL}")
    except RuntimeError:
        structlog.get_logger("ct-sync").exception("crowdtwist_failed")
    assert "RuntimeError" in stream.getvalue()
    assert API_KEY not in stream.getvalue()
