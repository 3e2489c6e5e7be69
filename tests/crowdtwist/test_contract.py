"""Contract: the same client scenarios against respx fixtures (the documented answers) and against the sandbox
over real HTTP give the same outcomes. If the sandbox drifts from the documentation, this fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import respx

from crowdtwist_client.client import CrowdTwistClient
from crowdtwist_client.responses import THIRD_PARTY_ID_TAKEN
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.errors import CtSyncError
from sync_worker.emulators import SandboxServer

ANN = UserPayload(third_party_id="296-1", first_name="Ann", last_name="Lee", email_address="ann@example.com")
BOB = UserPayload(third_party_id="296-2", first_name="Bob", last_name="Ray", email_address="ann@example.com")
USER = {"id": 1, "third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "email_address": "ann@example.com"}
NOT_FOUND = {"error": "user_not_found", "message": "User not found"}

Scenario = Callable[[CrowdTwistClient], object]
SCENARIOS: dict[str, Scenario] = {
    "create": lambda ct: ct.create_user(ANN).third_party_id,
    "create_again": lambda ct: ct.create_user(ANN),
    "create_taken_email": lambda ct: ct.create_user(BOB),
    "lookup_known": lambda ct: ct.get_user("296-1").last_name,  # type: ignore[union-attr]
    "lookup_unknown": lambda ct: ct.get_user("296-9"),
    "update_unknown": lambda ct: ct.update_user("296-9", UserPayload(last_name="Li")),
    "update_known": lambda ct: ct.update_user("296-1", UserPayload(last_name="Li")).last_name,  # type: ignore[union-attr]
}
EXPECTED = {
    "create": "296-1",
    "create_again": ("AlreadyExists", THIRD_PARTY_ID_TAKEN),
    "create_taken_email": ("DataRejected", "Email Address is already taken"),
    "lookup_known": "Lee",
    "lookup_unknown": None,
    "update_unknown": None,
    "update_known": "Li",
}


def _outcome(scenario: Scenario, client: CrowdTwistClient) -> object:
    try:
        return scenario(client)
    except CtSyncError as error:
        return (type(error).__name__, error.message)


def _respx_fixtures(router: respx.MockRouter) -> None:
    """The documented answers, as crowdtwist-api.md describes them."""
    router.post("/v2/users", json=ANN.body()).mock(
        side_effect=[
            httpx.Response(200, json=USER),
            httpx.Response(400, json={"error": "invalid_request", "message": THIRD_PARTY_ID_TAKEN}),
        ]
    )
    router.post("/v2/users", json=BOB.body()).respond(
        400, json={"error": "invalid_request", "message": "Email Address is already taken"}
    )
    router.get("/v2/users/296-1").respond(200, json=USER)
    router.get("/v2/users/296-9").respond(404, json=NOT_FOUND)
    router.put("/v2/users/296-9").respond(404, json=NOT_FOUND)
    router.put("/v2/users/296-1").respond(200, json={**USER, "last_name": "Li"})


@pytest.fixture(params=["respx", "sandbox"])
def crowdtwist(request: pytest.FixtureRequest) -> Iterator[CrowdTwistClient]:
    if request.param == "respx":
        with respx.mock(base_url="https://sb-api306.crowdtwist.com") as router:
            _respx_fixtures(router)
            with CrowdTwistClient(base_url="https://sb-api306.crowdtwist.com", api_key="contract-test-key") as client:
                yield client
    else:
        with SandboxServer() as server, CrowdTwistClient(base_url=server.url, api_key="contract-test-key") as client:
            yield client


def test_the_sandbox_answers_as_documented(crowdtwist: CrowdTwistClient) -> None:
    outcomes = {name: _outcome(scenario, crowdtwist) for name, scenario in SCENARIOS.items()}
    assert outcomes == EXPECTED
