"""The client against respx: requests it sends, retries it makes (waits off), and secrets it never shows."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from crowdtwist_client.client import CrowdTwistClient
from crowdtwist_client.pacing import Pacer
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.errors import (
    AlreadyExists,
    CtSyncError,
    DataRejected,
    NotAuthorized,
    PermanentError,
    RateLimited,
    TransientError,
)
from sync_worker.core.metering import count_calls

BASE = "https://sb-api306.crowdtwist.com"
API_KEY = "k3y-SECRET-0123456789"
USER = {"id": 564865656, "third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "unknown_new_field": 1}
PAYLOAD = UserPayload(third_party_id="296-1", first_name="Ann", last_name="Lee", email_address="a@example.com")
NOT_FOUND = {"error": "page_not_found", "message": "User does not exist."}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    for made in _made:
        made.close()
    _made.clear()


_made: list[CrowdTwistClient] = []


def client(**options: object) -> CrowdTwistClient:
    settings: dict[str, object] = {"base_url": BASE, "api_key": API_KEY, "sleep": lambda seconds: None}
    settings.update(options)
    made = CrowdTwistClient(**settings)  # type: ignore[arg-type]
    _made.append(made)
    return made


def test_lookup_by_third_party_id_uses_the_documented_path_and_the_key_as_a_query_parameter(
    mock: respx.MockRouter,
) -> None:
    route = mock.get("/v2/users/296-1/").respond(200, json=USER)  # User Profile: the path ends with a slash
    user = client().get_user("296-1")
    assert user is not None
    assert user.id == 564865656
    request = route.calls.last.request
    assert request.url.params["id_type"] == "third_party_id"
    assert request.url.params["api_key"] == API_KEY


def test_header_auth_keeps_the_key_out_of_the_url(mock: respx.MockRouter) -> None:
    route = mock.get("/v2/users/296-1/").respond(200, json=USER)
    client(auth="header").get_user("296-1")
    request = route.calls.last.request
    assert "api_key" not in str(request.url)
    assert request.headers["X-CT-Authorization"] == f"CTApiKey {API_KEY}"


def test_an_unknown_user_is_none_not_an_error(mock: respx.MockRouter) -> None:
    mock.get("/v2/users/296-9/").respond(404, json=NOT_FOUND)
    mock.put("/v2/users/296-9").respond(404, json=NOT_FOUND)
    assert client().get_user("296-9") is None
    assert client().update_user("296-9", PAYLOAD) is None


def test_member_numbers_are_percent_encoded_in_the_path(mock: respx.MockRouter) -> None:
    route = mock.get(url__regex=r".*/v2/users/.*").respond(404, json={})
    client().get_user("296/1' OR '1'='1")
    assert route.calls.last.request.url.raw_path.startswith(b"/v2/users/296%2F1%27%20OR%20%271%27%3D%271/?")


def test_create_sends_the_body_and_reads_the_full_user(mock: respx.MockRouter) -> None:
    route = mock.post("/v2/users").respond(200, json=USER)
    assert client().create_user(PAYLOAD).third_party_id == "296-1"
    assert json.loads(route.calls.last.request.content) == PAYLOAD.body()


def test_update_sends_a_partial_body(mock: respx.MockRouter) -> None:
    route = mock.put("/v2/users/296-1").respond(200, json=USER)
    client().update_user("296-1", UserPayload(last_name="Li"))
    assert json.loads(route.calls.last.request.content) == {"last_name": "Li"}


def test_a_taken_email_is_data_rejected_with_crowdtwist_message(mock: respx.MockRouter) -> None:
    answer = {"error": "invalid_request", "message": "Email Address is already taken"}
    mock.post("/v2/users").respond(400, json=answer)
    with pytest.raises(DataRejected) as caught:
        client().create_user(PAYLOAD)
    assert caught.value.message == "Email Address is already taken"
    assert not isinstance(caught.value, AlreadyExists)


def test_cookies_crowdtwist_sets_are_never_sent_back(mock: respx.MockRouter) -> None:
    session = "prod_prod_ctjr_2_68=52a1; expires=Thu, 01-Sep-2099 23:11:32 GMT; Max-Age=31536000; path=/"
    mock.post("/v2/users").respond(200, json=USER, headers=[("Set-Cookie", session), ("Set-Cookie", "b=2; path=/")])
    lookup = mock.get("/v2/users/296-2/").respond(404, json=NOT_FOUND)
    crowdtwist = client()
    crowdtwist.create_user(PAYLOAD)
    crowdtwist.get_user("296-2")
    assert "cookie" not in lookup.calls.last.request.headers


def test_a_2xx_without_json_is_transient_never_not_found(mock: respx.MockRouter) -> None:
    route = mock.get("/v2/users/296-1/").respond(200, html="<html><body>Service window</body></html>")
    with pytest.raises(TransientError, match="HTTP 200 without a JSON body"):
        client(retry_attempts=2).get_user("296-1")
    assert route.call_count == 2


def test_a_create_answered_without_json_is_not_retried(mock: respx.MockRouter) -> None:
    route = mock.post("/v2/users").respond(200, text="")
    with pytest.raises(TransientError) as caught:
        client().create_user(PAYLOAD)
    assert caught.value.outcome_unknown  # CrowdTwist may have stored it: the worker's next attempt looks first
    assert route.call_count == 1


def test_type_drift_in_fields_the_sync_does_not_read_is_tolerated(mock: respx.MockRouter) -> None:
    drifted = {**USER, "third_party_id": 2962185770, "middle_name": "", "date_of_birth": "1985-02-03"}
    drifted |= {"gender_id": "2", "is_active": True, "total_points": "12", "date_created": None, "tier_info": {}}
    mock.put("/v2/users/296-1").respond(200, json=drifted)
    user = client().update_user("296-1", PAYLOAD)
    assert user is not None
    assert (user.id, user.third_party_id, user.middle_name, user.date_of_birth) == (564865656, "2962185770", None, None)
    assert (user.gender_id, user.is_active, user.total_points) == (2, True, 12)


@pytest.mark.parametrize("answer", [{**USER, "id": "SECRET-7781"}, {**USER, "id": None}, ["SECRET-7781"]])
def test_an_unreadable_user_id_is_a_permanent_error_naming_the_field_not_the_value(
    mock: respx.MockRouter, answer: object
) -> None:
    route = mock.post("/v2/users").respond(200, json=answer)
    with capture_logs() as logs, pytest.raises(PermanentError) as caught:
        client().create_user(PAYLOAD)
    error = caught.value
    assert "create_user" in error.message
    assert "id" in error.message or "not a user object" in error.message
    assert (error.__cause__, error.__context__) == (None, None)
    assert "SECRET-7781" not in repr(error) + repr(logs)
    assert route.call_count == 1


def test_transient_errors_are_retried_then_succeed(mock: respx.MockRouter) -> None:
    route = mock.get("/v2/users/296-1/")
    route.side_effect = [
        httpx.Response(503, text="<html>maintenance</html>"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=USER),
    ]
    with count_calls() as meter:
        assert client().get_user("296-1") is not None
    assert route.call_count == 3
    assert meter.calls == 3


def test_a_write_is_resent_only_when_crowdtwist_surely_did_not_apply_it(mock: respx.MockRouter) -> None:
    route = mock.put("/v2/users/296-1")
    route.side_effect = [
        httpx.Response(503, text="<html>maintenance</html>"),
        httpx.ConnectError("refused"),
        httpx.Response(429, json={"error": "rate_limit_exceeded", "message": "Too Many Requests"}),
        httpx.Response(200, json=USER),
    ]
    assert client().update_user("296-1", PAYLOAD) is not None
    assert route.call_count == 4


@pytest.mark.parametrize(
    "answer", [httpx.ReadTimeout("slow"), httpx.Response(500, json={"error": "internal_error", "message": "boom"})]
)
def test_a_write_whose_fate_is_unknown_is_not_resent_with_its_old_body(
    mock: respx.MockRouter, answer: httpx.Response | Exception
) -> None:
    """Re-sending the same body later could overwrite a newer state another worker sent meanwhile."""
    route = mock.put("/v2/users/296-1")
    route.side_effect = [answer, httpx.Response(200, json=USER)]
    with pytest.raises(TransientError) as caught:
        client().update_user("296-1", PAYLOAD)
    assert caught.value.outcome_unknown
    assert route.call_count == 1


def test_retries_are_bounded_by_attempts(mock: respx.MockRouter) -> None:
    route = mock.get("/v2/users/296-1/").respond(500, json={"error": "internal_error", "message": "boom"})
    with pytest.raises(TransientError, match="HTTP 500: boom"):
        client(retry_attempts=3).get_user("296-1")
    assert route.call_count == 3


def test_data_errors_and_refused_keys_are_never_retried(mock: respx.MockRouter) -> None:
    create = mock.post("/v2/users").respond(
        400, json={"error": "x", "message": "First Name contains invalid characters"}
    )
    lookup = mock.get("/v2/users/296-1/").respond(401, json={"error": "unauthorized", "message": "bad key"})
    with pytest.raises(DataRejected):
        client().create_user(PAYLOAD)
    with pytest.raises(NotAuthorized):
        client().get_user("296-1")
    assert (create.call_count, lookup.call_count) == (1, 1)


def test_a_create_that_timed_out_is_not_retried_blindly(mock: respx.MockRouter) -> None:
    route = mock.post("/v2/users")
    route.side_effect = [httpx.ReadTimeout("no answer"), httpx.Response(200, json=USER)]
    with pytest.raises(TransientError, match="ReadTimeout"):
        client().create_user(PAYLOAD)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "first", [httpx.ConnectError("refused"), httpx.Response(503, text="<html/>"), httpx.Response(429)]
)
def test_a_create_that_never_reached_crowdtwist_is_retried(mock: respx.MockRouter, first: object) -> None:
    route = mock.post("/v2/users")
    route.side_effect = [first, httpx.Response(200, json=USER)]
    assert client().create_user(PAYLOAD).id == USER["id"]
    assert route.call_count == 2


def test_retry_after_sets_the_wait(mock: respx.MockRouter) -> None:
    waits: list[float] = []
    route = mock.get("/v2/users/296-1/")
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json=USER)]
    client(sleep=waits.append).get_user("296-1")
    assert waits == [3.0]


def test_a_429_slows_the_pacer(mock: respx.MockRouter) -> None:
    pacer = Pacer(600, clock=lambda: 0.0, sleep=lambda seconds: None)
    mock.get("/v2/users/296-1/").respond(429)
    with pytest.raises(RateLimited):
        client(pacer=pacer, retry_attempts=1).get_user("296-1")
    assert pacer.rate_per_minute == 150  # nothing measured yet: a quarter


def test_a_retry_logs_one_structured_line_without_the_url(mock: respx.MockRouter) -> None:
    route = mock.get("/v2/users/296-1/")
    route.side_effect = [httpx.Response(503, text="<html/>"), httpx.Response(200, json=USER)]
    with capture_logs() as logs:
        client().get_user("296-1")
    retries = [line for line in logs if line["event"] == "crowdtwist_retry"]
    assert len(retries) == 1
    assert retries[0]["operation"] == "get_user"
    assert retries[0]["status"] == 503
    assert API_KEY not in repr(logs)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError(f"cannot reach {BASE}/v2/users/296-1?api_key={API_KEY}"),
        httpx.ReadTimeout(f"timed out: {BASE}/v2/users/296-1?api_key={API_KEY}"),
        httpx.Response(500, text=f"error at /v2/users?api_key={API_KEY}"),
        httpx.Response(401, json={"error": "unauthorized", "message": f"key {API_KEY} refused"}),
        httpx.Response(400, json={"error": "x", "message": f"bad request api_key={API_KEY}"}),
    ],
)
def test_the_api_key_never_appears_in_an_exception_or_log(mock: respx.MockRouter, failure: object) -> None:
    mock.get("/v2/users/296-1/").mock(side_effect=[failure] * 4)
    with capture_logs() as logs, pytest.raises(CtSyncError) as caught:
        client(retry_attempts=2).get_user("296-1")
    exception = caught.value
    chain = [exception, exception.__cause__, exception.__context__]
    assert all(API_KEY not in str(item) and API_KEY not in repr(item) for item in chain)
    assert API_KEY not in repr(logs)
    assert API_KEY not in repr(client())


def test_paged_endpoints_read_until_a_short_page(mock: respx.MockRouter) -> None:
    pages = {1: [{"n": i} for i in range(25)], 2: [{"n": i} for i in range(25, 30)]}
    route = mock.get("/v2.1/users/7/activity_history").mock(
        side_effect=lambda request: httpx.Response(200, json=pages.get(int(request.url.params["page"]), []))
    )
    assert len(client().read_source("activity_history", 7) or []) == 30
    assert route.call_count == 2


def test_rewards_pages_hold_ten(mock: respx.MockRouter) -> None:
    route = mock.get("/v2.1/users/7/rewards").respond(200, json={"rewards": [{"id": 1}]})
    assert client().read_source("rewards", 7) == [{"id": 1}]
    assert route.calls.last.request.url.params["page_size"] == "10"


def test_purchases_use_the_pos_host_with_header_auth() -> None:
    with respx.mock(base_url="https://sb-pos306.crowdtwist.com") as router:
        route = router.get("/users/7/purchases").respond(200, json=[{"id": 9}])
        assert client(pos_base_url="https://sb-pos306.crowdtwist.com").read_source("purchases", 7) == [{"id": 9}]
    request = route.calls.last.request
    assert request.headers["X-CT-Authorization"] == f"CTApiKey {API_KEY}"
    assert "api_key" not in str(request.url)


def test_delete_is_queued_and_its_status_readable(mock: respx.MockRouter) -> None:
    mock.delete("/v2/users/296-1").respond(200, json={"user_id": 5, "status": "Queued"})
    status = {
        "user_id": 5,
        "initiated_by": "api",
        "status": "Deletion_completed",
        "status_history": [{"status": "Deletion_initiated", "date": "2026-11-22"}],
    }
    mock.get("/v2/users/delete/5").respond(200, json=status)
    ticket = client().delete_user("296-1")
    assert ticket is not None
    assert ticket.status == "Queued"
    result = client().deletion_status(5)
    assert result is not None
    assert result.status == "Deletion_completed"


def test_the_members_own_values_echoed_in_an_error_never_leave_the_client(mock: respx.MockRouter) -> None:
    """Error texts reach CT Sync Error, the ledger, logs and emails: they must not carry the member's data."""
    mock.post("/v2/users").respond(
        400, json={"error": "invalid_request", "message": "A@Example.com is already taken (Ann Lee, 296-1)"}
    )
    with pytest.raises(DataRejected) as caught:
        client().create_user(PAYLOAD)
    assert caught.value.message == "[email_address] is already taken ([first_name] [last_name], 296-1)"
    assert "Ann" not in str(caught.value)
