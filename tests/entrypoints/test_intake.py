"""The intake: what Siebel's workflow posts, what it gets back, and what reaches the queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kombu.connection import Connection

from config.settings import SiebelSettings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import MemberEvent, decode_event
from sync_worker.entrypoints.intake import create_intake_app, openapi_document
from sync_worker.http import BackgroundServer
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.topology import QueueTopology
from tests.builders import siebel_member
from tests.fakes import FakePublisher, FakeStore

TOKEN = "intake-token-0123456789"


@contextmanager
def TestClient(app: object) -> Iterator[httpx.Client]:
    """The app on a real server on 127.0.0.1, and an HTTP client for it."""
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def post(client: httpx.Client, body: object, **headers: str) -> httpx.Response:
    return client.post(
        "/v1/member-events", content=json.dumps(body), headers={"content-type": "application/json", **headers}
    )


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(publisher: FakePublisher) -> Iterator[httpx.Client]:
    app = create_intake_app(publisher=publisher, store=FakeStore(), token=None, max_body_bytes=1_048_576)
    with TestClient(app) as test_client:
        yield test_client


def test_an_event_is_queued_and_answered_202_with_its_id(client: httpx.Client, publisher: FakePublisher) -> None:
    response = post(client, {"event": "enroll", "member": siebel_member(**{"Member Number": "296-2185770"})})
    assert response.status_code == 202
    event = publisher.published[0]
    assert response.json() == {"event_id": event.event_id}
    assert (event.event_type, event.member_number, event.source) == ("enroll", "296-2185770", "intake")


def test_data_crowdtwist_would_refuse_is_still_accepted(client: httpx.Client, publisher: FakePublisher) -> None:
    member = siebel_member(**{"Last Name": "", "Email Address": "not-an-email"})
    assert post(client, {"event": "update", "member": member}).status_code == 202
    assert len(publisher.published) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 422, "body"),
        (
            {"event": "update", "member": {k: v for k, v in siebel_member().items() if k != "Member Number"}},
            422,
            "member.Member Number",
        ),
        ({"event": "update", "member": siebel_member(**{"Member Number": 296})}, 422, "member.Member Number"),
        ({"event": "delete", "member": siebel_member()}, 422, "event"),
        ({"event": "update", "member": siebel_member(**{"Date of Birth": "30.11.1979"})}, 422, "member.Date of Birth"),
        ({"event": "update", "member": siebel_member(**{"First Name": "Ann\x00"})}, 422, "First Name"),
        ({"event": "update", "member": siebel_member(**{"Last Name": "Lee\x1b[31m"})}, 422, "Last Name"),
        ({"event": "update", "member": siebel_member(), "extra": 1}, 422, "extra"),
        ([1, 2], 422, "body"),
    ],
)
def test_structurally_bad_input_is_refused_naming_the_field_and_nothing_is_queued(
    client: httpx.Client, publisher: FakePublisher, body: object, status: int, field: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v1/member-events", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert field in [problem["field"] for problem in response.json()["detail"]]
    assert publisher.published == []


def test_a_two_megabyte_body_is_refused_with_413(client: httpx.Client, publisher: FakePublisher) -> None:
    member = siebel_member(**{"Last Name": "x" * 2_000_000})
    assert post(client, {"event": "update", "member": member}).status_code == 413
    assert publisher.published == []


def test_a_chunked_body_over_the_limit_is_refused(client: httpx.Client, publisher: FakePublisher) -> None:
    chunks = (b"x" * 65536 for _ in range(40))
    response = client.post("/v1/member-events", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert publisher.published == []


def test_a_token_is_required_when_set(publisher: FakePublisher) -> None:
    app = create_intake_app(publisher=publisher, store=FakeStore(), token=TOKEN, max_body_bytes=1_048_576)
    body = {"event": "update", "member": siebel_member()}
    with TestClient(app) as client:
        assert post(client, body).status_code == 401
        assert post(client, body, authorization="Bearer wrong").status_code == 401
        assert post(client, body, authorization=f"Bearer {TOKEN}").status_code == 202
    assert len(publisher.published) == 1


def test_queue_down_answers_503_and_writes_oic_failure(tmp_path: Path) -> None:
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    member = siebel_member(**{"Member Number": "296-1"})
    store.upsert_member(member)
    publisher = FakePublisher()
    publisher.script.failures = [TransientError("queue unavailable: connection refused", system="broker")]
    app = create_intake_app(publisher=publisher, store=store, token=None, max_body_bytes=1_048_576)
    with TestClient(app) as client:
        response = post(client, {"event": "update", "member": member})
    assert response.status_code == 503
    document = store.document("296-1")
    assert document is not None
    assert document["CT Sync Status"] == "OIC Failure"
    assert document["CT Sync Error"] == "Integration queue unavailable: queue unavailable: connection refused"


class HeldConfirms:
    """A publisher's `submit`: each event waits for the test to confirm or refuse it."""

    def __init__(self) -> None:
        self.futures: dict[str, Future[None]] = {}
        self.submitted = threading.Event()

    def __call__(self, event: MemberEvent) -> Future[None]:
        future: Future[None] = Future()
        future.set_running_or_notify_cancel()
        self.futures[event.member_number] = future
        self.submitted.set()
        return future


def test_with_submit_the_202_goes_out_only_once_the_queue_confirmed(publisher: FakePublisher) -> None:
    confirms = HeldConfirms()
    app = create_intake_app(
        publisher=publisher, store=FakeStore(), token=None, max_body_bytes=1_048_576, submit=confirms
    )
    answers: list[httpx.Response] = []
    with TestClient(app) as client:
        body = {"event": "update", "member": siebel_member(**{"Member Number": "296-1"})}
        posting = threading.Thread(target=lambda: answers.append(post(client, body)))
        posting.start()
        confirms.submitted.wait(30)
        assert answers == []  # handed over, not confirmed: no answer yet
        confirms.futures["296-1"].set_result(None)
        posting.join(30)
    assert [answer.status_code for answer in answers] == [202]
    assert publisher.published == []  # submitted, not published on a pool thread


def test_with_submit_an_event_the_queue_refused_is_answered_503_with_oic_failure(tmp_path: Path) -> None:
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    member = siebel_member(**{"Member Number": "296-2"})
    store.upsert_member(member)
    confirms = HeldConfirms()
    refused: list[str] = []
    app = create_intake_app(
        publisher=FakePublisher(), store=store, token=None, max_body_bytes=1_048_576, submit=confirms,
        on_refused=lambda event, reason: refused.append(event.member_number),
    )  # fmt: skip
    answers: list[httpx.Response] = []
    with TestClient(app) as client:
        posting = threading.Thread(target=lambda: answers.append(post(client, {"event": "update", "member": member})))
        posting.start()
        confirms.submitted.wait(30)
        error = TransientError("queue unavailable: the broker refused the event (nack)", system="broker")
        confirms.futures["296-2"].set_exception(error)
        posting.join(30)
    assert [answer.status_code for answer in answers] == [503]
    assert (store.document("296-2") or {})["CT Sync Status"] == "OIC Failure"
    assert refused == ["296-2"]


def test_the_openapi_document_is_openapi_3_0_without_3_1_constructs(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.0.3"
    text = json.dumps(document)
    assert '"type": "null"' not in text
    assert '"const"' not in text
    assert "$defs" not in text
    member = document["components"]["schemas"]["IntakeMember"]
    assert "Member Number" in member["required"]
    assert member["properties"]["First Name"]["nullable"] is True
    assert document == openapi_document()


def test_healthz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.rabbitmq
def test_the_event_is_really_on_the_rabbitmq_queue(rabbitmq_url: str, unique_name: str) -> None:
    topology = QueueTopology.named(unique_name)
    publisher = KombuPublisher(Connection(rabbitmq_url, transport_options={"confirm_publish": True}), topology)
    app = create_intake_app(
        publisher=publisher, store=FakeStore(), token=None, max_body_bytes=1_048_576, submit=publisher.submit
    )
    try:
        with TestClient(app) as client:
            response = post(client, {"event": "enroll", "member": siebel_member(**{"Member Number": "296-7"})})
        assert response.status_code == 202
        with Connection(rabbitmq_url) as connection:
            message = topology.work_queue.bind(connection.default_channel).get(no_ack=True)
            assert message is not None
            assert decode_event(message.body).event_id == response.json()["event_id"]
    finally:
        publisher.close()
        with Connection(rabbitmq_url) as connection:
            topology.delete(connection)


def test_an_unreachable_rabbitmq_answers_503(tmp_path: Path, unique_name: str) -> None:
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    member = siebel_member(**{"Member Number": "296-8"})
    store.upsert_member(member)
    publisher = KombuPublisher(
        Connection("amqp://guest:guest@127.0.0.1:1//", connect_timeout=1), QueueTopology.named(unique_name)
    )
    app = create_intake_app(publisher=publisher, store=store, token=None, max_body_bytes=1_048_576)
    with TestClient(app) as client:
        assert post(client, {"event": "update", "member": member}).status_code == 503
    assert store.document("296-8")["CT Sync Status"] == "OIC Failure"  # type: ignore[index]


def test_readyz_says_which_system_is_not_answering(publisher: FakePublisher) -> None:
    from sync_worker.worker.readiness import ReadinessProbe

    def broker_down() -> None:
        raise TransientError("queue unavailable", system="broker")

    ready = create_intake_app(
        publisher=publisher,
        store=FakeStore(),
        token=None,
        max_body_bytes=1024,
        readiness=ReadinessProbe(store=FakeStore(), broker=lambda: None),
    )
    down = create_intake_app(
        publisher=publisher,
        store=FakeStore(),
        token=None,
        max_body_bytes=1024,
        readiness=ReadinessProbe(store=FakeStore(), broker=broker_down),
    )
    with TestClient(ready) as client:
        assert client.get("/readyz").json() == {"store": True, "broker": True}
    with TestClient(down) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"store": True, "broker": False}
