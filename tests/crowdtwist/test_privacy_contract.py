"""Contract: the client's privacy calls against the sandbox over real HTTP, in every published answer shape: both
list shapes, paging across pages and past the end, the point-of-sale host with header auth, both deletion-status
paths, the documented refusals, and a source whose endpoint is not served."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crowdtwist_client.client import SOURCES, CrowdTwistClient
from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from sync_worker.core.errors import DataRejected
from sync_worker.core.privacy import ACCESS_SOURCES

API_KEY = "privacy-contract-key-0123456789"
ANN = {"third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "email_address": "ann@example.com"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(api_key=API_KEY)) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[CrowdTwistClient]:
    sandbox.state.reset()
    with CrowdTwistClient(base_url=sandbox.url, api_key=API_KEY, retry_attempts=1) as made:
        yield made


def _ann(client: CrowdTwistClient) -> int:
    from sync_worker.core.ct_user import UserPayload

    return client.create_user(UserPayload(**ANN)).id


def test_the_client_reads_every_source_the_core_exports() -> None:
    assert set(SOURCES) == set(ACCESS_SOURCES)


@pytest.mark.parametrize("shape", ["list", "object"])
def test_a_list_is_read_across_three_pages_in_either_published_shape(
    sandbox: SandboxServer, client: CrowdTwistClient, shape: str
) -> None:
    user_id = _ann(client)
    sandbox.state.set_rules(list_shape=shape)
    sandbox.state.add_list_items(user_id, "activity_history", [{"n": n} for n in range(60)])
    sandbox.state.reset_counters()
    assert client.read_source("activity_history", user_id) == [{"n": n} for n in range(60)]
    assert sandbox.state.stats()["calls"]["activity_history"] == 3  # 25, 25, then a short page of 10


def test_a_full_last_page_is_followed_by_an_empty_page_past_the_end(
    sandbox: SandboxServer, client: CrowdTwistClient
) -> None:
    user_id = _ann(client)
    sandbox.state.add_list_items(user_id, "rewards", [{"n": n} for n in range(20)])  # two full pages of 10
    sandbox.state.reset_counters()
    assert len(client.read_source("rewards", user_id) or []) == 20
    assert sandbox.state.stats()["calls"]["rewards"] == 3


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, keeping each request as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


@pytest.mark.parametrize("shape", ["list", "object"])
def test_purchases_come_from_the_pos_host_with_the_key_in_a_header_only(sandbox: SandboxServer, shape: str) -> None:
    sandbox.state.reset()
    sandbox.state.set_rules(list_shape=shape)
    recording = RecordingTransport()
    with (
        CrowdTwistClient(
            base_url="http://127.0.0.1:9", pos_base_url=sandbox.url, api_key=API_KEY, auth="query", transport=recording
        ) as pos_client,
        CrowdTwistClient(base_url=sandbox.url, api_key=API_KEY) as main,
    ):
        user_id = _ann(main)
        sandbox.state.add_list_items(user_id, "purchases", [{"sku": "A"}])
        assert pos_client.read_source("purchases", user_id) == [{"sku": "A"}]
    [sent] = recording.sent
    assert API_KEY not in str(sent.url)
    assert sent.headers["X-CT-Authorization"] == f"CTApiKey {API_KEY}"


def test_the_pos_host_refuses_the_key_in_the_query(sandbox: SandboxServer, client: CrowdTwistClient) -> None:
    user_id = _ann(client)
    answer = httpx.get(f"{sandbox.url}/users/{user_id}/purchases", params={"api_key": API_KEY})
    assert answer.status_code == 403
    assert set(answer.json()) == {"system", "reason", "description", "message"}  # the POS envelope (seen)


def test_without_a_pos_host_purchases_are_read_from_the_base_url(client: CrowdTwistClient) -> None:
    user_id = _ann(client)
    assert client.read_source("purchases", user_id) == []


def test_a_source_whose_endpoint_is_not_served_is_not_available(sandbox: SandboxServer) -> None:
    sandbox.state.reset()
    with CrowdTwistClient(base_url=sandbox.url, api_key=API_KEY, pos_base_url=f"{sandbox.url}/elsewhere") as client:
        user_id = _ann(client)
        assert client.read_source("purchases", user_id) is None


@pytest.mark.parametrize("path", ["/v2/users/delete/{ct_user_id}", "/v2/user_deletion/{ct_user_id}"])
def test_deletion_advances_to_completed_on_either_published_status_path(sandbox: SandboxServer, path: str) -> None:
    sandbox.state.reset()
    with CrowdTwistClient(base_url=sandbox.url, api_key=API_KEY, deletion_status_path=path) as client:
        user_id = _ann(client)
        ticket = client.delete_user(user_id, id_type="id")
        assert ticket is not None
        assert (ticket.user_id, ticket.status) == (user_id, "Queued")
        seen = []
        for _ in range(3):
            status = client.deletion_status(user_id)
            assert status is not None
            seen.append(status.status)
            sandbox.state.advance(60)
        assert seen == ["Deletion_initiated", "Deletion_in_progress", "Deletion_completed"]
        assert [step.status for step in status.status_history] == seen
        assert client.user_document("296-1", id_type="third_party_id") is None  # gone once completed


def test_the_documented_refusals_of_a_deletion_come_back_verbatim(
    sandbox: SandboxServer, client: CrowdTwistClient
) -> None:
    user_id = _ann(client)
    client.delete_user(user_id, id_type="id")
    with pytest.raises(DataRejected) as again:
        client.delete_user(user_id, id_type="id")
    assert again.value.message == "Unable to initiate deletion"
    sandbox.state.reset()
    user_id = _ann(client)
    httpx.post(
        f"{sandbox.url}/v2/users/{user_id}/activities",
        params={"api_key": API_KEY},
        json={"activity_id": "a", "num_points": 50},
    ).raise_for_status()
    httpx.put(
        f"{sandbox.url}/v2/users/{user_id}", params={"api_key": API_KEY}, json={"is_active": 0}
    ).raise_for_status()
    with pytest.raises(DataRejected) as inactive:
        client.delete_user(user_id, id_type="id")
    assert inactive.value.message == "Member is inactive but has redeemable points"


def test_the_whole_user_object_is_read_for_an_export(client: CrowdTwistClient) -> None:
    _ann(client)
    document = client.user_document("ann@example.com", id_type="email")
    assert document is not None
    assert {"id", "email_address", "redeemable_points", "custom_data"} <= document.keys()


@pytest.mark.slow
def test_an_access_export_finishes_through_a_429_storm_paced_by_the_shared_budget(sandbox: SandboxServer) -> None:
    """CrowdTwist's real limit (here 120/min) far below the budget (600/min): every call still goes through the
    one pacer, whose rate comes down on the 429s, and the export ends whole."""
    from crowdtwist_client.pacing import Pacer
    from sync_worker.core.privacy import Identity, PrivacyRequests
    from tests.fakes import FakeClock, FakePrivacyRegister

    sandbox.state.reset()
    with CrowdTwistClient(base_url=sandbox.url, api_key=API_KEY) as setup:
        user_id = _ann(setup)
    sandbox.state.add_list_items(user_id, "activity_history", [{"n": n} for n in range(30)])
    sandbox.state.add_list_items(user_id, "rewards", [{"n": n} for n in range(15)])
    sandbox.state.reset_counters()
    sandbox.state.set_faults(rate_limit_per_minute=120)
    pacer = Pacer(600)
    with CrowdTwistClient(
        base_url=sandbox.url, api_key=API_KEY, pacer=pacer, retry_attempts=12, retry_max_time=120
    ) as client:
        export = PrivacyRequests(crowdtwist=client, register=FakePrivacyRegister(), clock=FakeClock()).access(
            Identity("id", str(user_id))
        )
        slowed_to = pacer.rate_per_minute
    sandbox.state.set_faults(rate_limit_per_minute=None)
    stats = sandbox.state.stats()
    assert (export.counts["activity_history"], export.counts["rewards"]) == (30, 15)
    assert stats["rate_limited"] > 0  # a storm it was
    assert slowed_to < 600  # the shared pacer, not a side channel, carried the export
