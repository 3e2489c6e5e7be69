"""The intake under fuzzing: schemathesis from its own OpenAPI document, and hypothesis with hostile member payloads.
Never a 5xx, never a crash, and nothing queued for a request that was refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_worker.entrypoints.intake import create_intake_app, openapi_document
from sync_worker.http import BackgroundServer
from tests.builders import siebel_member
from tests.fakes import FakePublisher, FakeStore

schema = schemathesis.openapi.from_dict(openapi_document())
PUBLISHER = FakePublisher()


@pytest.fixture(scope="module")
def intake_url() -> Iterator[str]:
    app = create_intake_app(publisher=PUBLISHER, store=FakeStore(), token=None, max_body_bytes=65_536)
    with BackgroundServer(app) as server:
        yield server.url


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_intake_never_fails_on_anything_its_document_allows(case: Any, intake_url: str) -> None:
    queued = len(PUBLISHER.published)
    response = case.call(base_url=intake_url)
    assert response.status_code < 500
    assert len(PUBLISHER.published) == queued + (1 if response.status_code == 202 else 0)


HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["O'Brien", "']; DROP TABLE members; --", "[Member Number] = '1' OR '1'='1", "\u202eevil",
                     "😀" * 50, "A" * 10_000, "\x00\x01", "<script>alert(1)</script>", "مرحبا", "  "]),
    st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
)  # fmt: skip
FIELDS = ["Member Number", "First Name", "Last Name", "Email Address", "Date of Birth", "Updated", "Status", "Id"]


@given(changes=st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=4), event=st.sampled_from(["enroll", "x"]))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_member_payloads_get_a_clear_answer_never_a_5xx(
    intake_url: str, changes: dict[str, Any], event: str
) -> None:
    queued = len(PUBLISHER.published)
    body = {"event": event, "member": {**siebel_member(), **changes}}
    response = httpx.post(f"{intake_url}/v1/member-events", content=json.dumps(body),
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code in (202, 413, 422)
    if response.status_code == 202:
        assert len(PUBLISHER.published) == queued + 1
    else:
        assert len(PUBLISHER.published) == queued
        assert response.json()["detail"], "a refusal must say what is wrong"
