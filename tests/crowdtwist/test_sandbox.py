"""The sandbox over real HTTP: documented answers, fault switches, the limit, and counters."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crowdtwist_client.responses import THIRD_PARTY_ID_TAKEN
from crowdtwist_client.sandbox import SandboxState
from sync_worker.emulators import SandboxServer

ANN = {"third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "email_address": "ann@example.com"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    server.state.reset()
    with httpx.Client(base_url=server.url) as client:
        yield client


def test_create_answers_200_with_the_full_user(http: httpx.Client) -> None:
    response = http.post("/v2/users", json=ANN)
    assert response.status_code == 200
    user = response.json()
    assert {"id", "total_points", "redeemable_points", "date_created", "date_last_updated"} <= user.keys()
    assert user["third_party_id"] == "296-1"


def test_an_unknown_user_is_a_404_envelope(http: httpx.Client) -> None:
    response = http.get("/v2/users/296-404", params={"id_type": "third_party_id"})
    assert response.status_code == 404
    assert response.json() == {"error": "user_not_found", "message": "User not found"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"third_party_id": "296-2"}, "Email Address is already taken"),
        ({"email_address": "other@example.com"}, THIRD_PARTY_ID_TAKEN),
        (
            {"third_party_id": "296-3", "email_address": "x@example.com", "first_name": "Ann😀"},
            "First Name contains invalid characters",
        ),
        ({"third_party_id": "296-4", "email_address": "y@example.com", "last_name": ""}, "Last Name is required"),
        (
            {"third_party_id": "296-5", "email_address": "z@example.com", "country_code": "US", "postal_code": "12"},
            "Postal Code is invalid",
        ),
        ({"third_party_id": "296-6", "email_address": "w@example.com", "country_code": "GB"}, "City is required"),
    ],
)
def test_refused_data_is_a_400_with_the_documented_envelope(http: httpx.Client, change: dict, message: str) -> None:  # type: ignore[type-arg]
    http.post("/v2/users", json=ANN).raise_for_status()
    response = http.post("/v2/users", json={**ANN, **change})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "message": message}


def test_update_by_third_party_id_is_partial(http: httpx.Client) -> None:
    http.post("/v2/users", json=ANN).raise_for_status()
    response = http.put("/v2/users/296-1", params={"id_type": "third_party_id"}, json={"last_name": "Li"})
    assert response.json()["last_name"] == "Li"
    assert response.json()["first_name"] == "Ann"


def test_down_serves_a_503_html_page(server: SandboxServer, http: httpx.Client) -> None:
    server.state.set_faults(down=True)
    response = http.get("/v2/users/296-1", params={"id_type": "third_party_id"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html"


def test_the_leaky_bucket_answers_429_past_the_limit(server: SandboxServer, http: httpx.Client) -> None:
    server.state.set_faults(rate_limit_per_minute=600)  # 10/s, one second of burst
    statuses = [http.get("/v2/users/296-1", params={"id_type": "third_party_id"}).status_code for _ in range(30)]
    assert statuses.count(429) >= 10
    assert server.state.stats()["rate_limited"] == statuses.count(429)


def test_faults_and_stats_are_driven_over_http(http: httpx.Client) -> None:
    assert http.post("/_sandbox/faults", json={"error_rate": 1.0}).status_code == 200
    assert http.get("/v2/users/296-1").status_code == 500
    stats = http.get("/_sandbox/stats").json()
    assert stats["server_errors"] == 1
    assert stats["calls"] == {"get_user": 1}
    assert http.post("/_sandbox/faults", json={"no_such_switch": 1}).status_code == 400


def test_creates_per_third_party_id_are_counted(http: httpx.Client, server: SandboxServer) -> None:
    http.post("/v2/users", json=ANN)
    http.post("/v2/users", json=ANN)
    stats = server.state.stats()
    assert stats["creates"] == 1
    assert stats["max_creates_per_third_party_id"] == 1
    assert server.state.users_with_third_party_id("296-1") == 1


def test_an_api_key_can_be_required() -> None:
    state = SandboxState(api_key="right")
    with SandboxServer(state) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/v2/users/1", params={"api_key": "wrong"}).status_code == 403
        assert http.get("/v2/users/1", headers={"X-CT-Authorization": "CTApiKey right"}).status_code == 404


def test_a_slow_answer_does_not_hold_up_others(server: SandboxServer) -> None:
    import threading
    import time

    server.state.set_faults(latency=0.5)
    durations: list[float] = []

    def call() -> None:
        started = time.monotonic()
        httpx.get(server.url + "/v2/users/1")
        durations.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.state.set_faults(latency=0.0)
    assert time.monotonic() - started < 10 * 0.5, "latency was served one request at a time"
