"""Contract: the same client scenarios against respx fixtures (the documented answers, in words the sandbox does
not use) and against the sandbox over real HTTP give the same outcomes; and the client copes with every behaviour
the sandbox can be switched to where CrowdTwist publishes none."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import respx

from crowdtwist_client.client import CrowdTwistClient
from sandbox.servers import SandboxServer
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.errors import AlreadyExists, CtSyncError, DataRejected

ANN = UserPayload(third_party_id="296-1", first_name="Ann", last_name="Lee", email_address="ann@example.com")
BOB = UserPayload(third_party_id="296-2", first_name="Bob", last_name="Ray", email_address="ann@example.com")
USER = {"id": 1, "third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "email_address": "ann@example.com"}
NOT_FOUND = {"error": "page_not_found", "message": "User does not exist."}
EVERY_FIELD = UserPayload(
    third_party_id="296-7", first_name="Zoë", last_name="Ng", middle_name="Q", email_address="zoe@example.com",
    email_is_verified=1, postal_code="78701", country_code="US", city_id=5, city_name="Austin",
    date_of_birth=344754000, mobile_phone_number="5125550100", lang_pref="en", gender_id=2, receive_email_updates=1,
    is_active=1, remove_points=0,
)  # fmt: skip

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
    "create_again": "AlreadyExists",  # in whatever words: see test_responses
    "create_taken_email": ("DataRejected", "Email Address is already taken"),
    "lookup_known": "Lee",
    "lookup_unknown": None,
    "update_unknown": None,
    "update_known": "Li",
}


def _outcome(scenario: Scenario, client: CrowdTwistClient) -> object:
    try:
        return scenario(client)
    except AlreadyExists:
        return "AlreadyExists"
    except CtSyncError as error:
        return (type(error).__name__, error.message)


def _respx_fixtures(router: respx.MockRouter) -> None:
    """The documented answers, as crowdtwist-api.md describes them."""
    router.post("/v2/users", json=ANN.body()).mock(
        side_effect=[
            httpx.Response(200, json=USER),
            httpx.Response(400, json={"error": "invalid_request", "message": "third_party_id must be unique"}),
        ]
    )
    router.post("/v2/users", json=BOB.body()).respond(
        400, json={"error": "invalid_request", "message": "Email Address is already taken"}
    )
    router.get("/v2/users/296-1/").respond(200, json=USER)
    router.get("/v2/users/296-9/").respond(404, json=NOT_FOUND)
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


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[CrowdTwistClient]:
    sandbox.state.reset()
    with CrowdTwistClient(base_url=sandbox.url, api_key="contract-test-key") as made:
        yield made


@pytest.mark.parametrize(
    "wording",
    [
        "Third Party Id is already taken",
        "third_party_id must be unique",
        "third_party_id is not unique",
        "A user with this third party id already exists.",
    ],
)
def test_a_taken_third_party_id_is_recognised_in_any_wording(
    sandbox: SandboxServer, client: CrowdTwistClient, wording: str
) -> None:
    sandbox.state.set_rules(third_party_id_taken=wording)
    client.create_user(ANN)
    with pytest.raises(AlreadyExists):
        client.create_user(ANN.model_copy(update={"email_address": "other@example.com"}))


def test_with_email_checked_first_a_repeated_create_looks_like_a_data_error(
    sandbox: SandboxServer, client: CrowdTwistClient
) -> None:
    """The unkind case the sync must handle (issue 15): only a look-up by third_party_id tells it apart."""
    sandbox.state.set_rules(email_checked_first=True)
    created = client.create_user(ANN)
    with pytest.raises(DataRejected) as refused:
        client.create_user(ANN)
    assert not isinstance(refused.value, AlreadyExists)
    found = client.get_user("296-1")
    assert found is not None
    assert found.id == created.id


def test_with_duplicates_accepted_a_repeated_create_makes_a_second_user(
    sandbox: SandboxServer, client: CrowdTwistClient
) -> None:
    sandbox.state.set_rules(duplicate_third_party_id="accept")
    first = client.create_user(ANN)
    second = client.create_user(ANN.model_copy(update={"email_address": "other@example.com"}))
    assert first.id != second.id
    assert sandbox.state.users_with_third_party_id("296-1") == 2


def test_the_client_sends_no_field_crowdtwist_does_not_document(
    sandbox: SandboxServer, client: CrowdTwistClient
) -> None:
    client.create_user(EVERY_FIELD.for_create())
    client.update_user("296-7", EVERY_FIELD)
    stats = sandbox.state.stats()
    assert stats["calls"] == {"create_user": 1, "update_user": 1}
    assert stats["unknown_fields"] == {}


def test_the_client_returns_no_cookie_to_the_sandbox(sandbox: SandboxServer, client: CrowdTwistClient) -> None:
    client.create_user(ANN)
    client.get_user("296-1")
    client.update_user("296-1", UserPayload(last_name="Li"))
    assert sandbox.state.stats()["requests_with_cookies"] == 0
