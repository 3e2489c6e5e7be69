"""The sandbox over real HTTP: the documented and captured answers, the switches for what is unpublished, the
asynchronous deletion, paging, fault switches, the limit, and counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.crowdtwist import SandboxState, guesses
from sandbox.crowdtwist.user_object import KEYS
from sandbox.crowdtwist.validation import valid_name
from sandbox.servers import SandboxServer

ANN = {"third_party_id": "296-1", "first_name": "Ann", "last_name": "Lee", "email_address": "ann@example.com"}
BY_MEMBER = {"id_type": "third_party_id"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    server.state.reset()
    with httpx.Client(base_url=server.url) as client:
        yield client


def _create(http: httpx.Client, **change: Any) -> dict[str, Any]:
    response = http.post("/v2/users", json={**ANN, **change})
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


def test_create_answers_200_with_every_key_of_the_real_user_object(http: httpx.Client) -> None:
    user = _create(http, gender_id=2, country_code="US", city_name="Austin", postal_code="78701")
    assert list(user) == [key for key in KEYS if key != "custom_data"]  # as captured: no custom_data on create
    assert (user["is_active"], user["email_is_verified"], user["gender_id"]) == (True, False, "2")
    assert (user["country"], user["city"], user["third_party_id"]) == ("United States", "Austin", "296-1")
    assert not {"country_code", "city_id", "city_name"} & user.keys()
    assert user["tier_info"]["current_level"]["title"] == guesses.TIER_LEVEL["title"]


def test_a_look_up_answers_the_same_object_with_custom_data(http: httpx.Client) -> None:
    created = _create(http)
    found = http.get("/v2/users/296-1/", params=BY_MEMBER).json()
    assert found == {**created, "custom_data": {}}


def test_an_unknown_user_is_page_not_found(http: httpx.Client) -> None:
    response = http.get("/v2/users/296-404/", params=BY_MEMBER)
    assert response.status_code == 404
    assert response.json() == {"error": "page_not_found", "message": "User does not exist."}


@pytest.mark.parametrize(("method", "path"), [("GET", "/v2/users"), ("GET", "/v3/users/1"), ("PATCH", "/v2/users/1")])
def test_an_unknown_route_is_page_not_found(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 404
    assert response.json()["error"] == "page_not_found"


def test_paths_are_routed_with_and_without_the_trailing_slash(http: httpx.Client) -> None:
    assert http.post("/v2/users/", json=ANN).status_code == 200
    assert http.get("/v2/users/296-1", params=BY_MEMBER).status_code == 200
    assert http.get("/v2/users/296-1/", params=BY_MEMBER).status_code == 200
    assert http.put("/v2/users/296-1/", params=BY_MEMBER, json={"last_name": "Li"}).json()["last_name"] == "Li"


def test_every_documented_id_type_is_honoured(http: httpx.Client) -> None:
    user = _create(http, username="annlee", mobile_phone_number="5125550100")
    for id_type, value in [
        ("id", user["id"]),
        ("third_party_id", "296-1"),
        ("email", "ANN@example.com"),
        ("username", "annlee"),
        ("mobile_phone_number", "5125550100"),
    ]:
        assert http.get(f"/v2/users/{value}/", params={"id_type": id_type}).json()["id"] == user["id"], id_type
    assert http.get("/v2/users/296-1/").status_code == 404  # no id_type: the CrowdTwist id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"third_party_id": "296-2"}, "Email Address is already taken"),
        ({"email_address": "other@example.com"}, guesses.THIRD_PARTY_ID_TAKEN),
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
def test_refused_data_is_a_400_with_the_documented_envelope(
    http: httpx.Client, change: dict[str, Any], message: str
) -> None:
    _create(http)
    response = http.post("/v2/users", json={**ANN, **change})
    assert response.status_code == 400
    assert response.json() == {"error": guesses.BAD_REQUEST, "message": message}


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("प्रिया", True),  # Hindi: a virama (Mn) and vowel signs (Mc)
        ("محمّد", True),  # Arabic with shadda (Mn)
        ("Nguyễn", True),
        ("Zoe\u0308", True),  # decomposed diaeresis
        ("יוֹסֵף", True),  # Hebrew with niqqud
        ("ศรีสมร", True),  # Thai
        ("தமிழ்", True),  # Tamil
        ("Ольга", True),
        ("Ελένη", True),
        ("李小龍", True),
        ("김민준", True),
        ("O’Brien-Smith Jr.", True),
        ("\u0301Ann", False),  # a mark on nothing
        ("Ann😀", False),
        ("Ann<b>", False),
        ("O'Brien", False),  # the ASCII apostrophe is outside the rule (the mapping sends ’)
    ],
)
def test_the_name_rule_is_letters_of_any_script_with_their_marks(name: str, valid: bool) -> None:
    assert valid_name(name) is valid


def test_a_name_with_combining_marks_is_accepted_over_http(http: httpx.Client) -> None:
    assert _create(http, first_name="प्रिया", last_name="محمّد")["first_name"] == "प्रिया"


def test_fields_the_real_api_accepts_are_accepted_and_unknown_ones_counted(
    server: SandboxServer, http: httpx.Client
) -> None:
    documented = {"send_verify_email": 1, "sign_up_channel_id": 2, "password": "pw-1", "username": "annlee"}
    user = _create(http, **documented, shoe_size=42)
    assert (user["username"], user["sign_up_channel_id"], user["password"]) == ("annlee", "2", None)
    assert server.state.stats()["unknown_fields"] == {"shoe_size": 1}


def test_strict_mode_refuses_an_unknown_field(server: SandboxServer, http: httpx.Client) -> None:
    assert http.post("/_sandbox/rules", json={"strict_fields": True}).status_code == 200
    response = http.post("/v2/users", json={**ANN, "shoe_size": 42})
    assert response.status_code == 400
    assert response.json()["message"] == "Unknown field shoe_size"


def test_update_by_third_party_id_is_partial(http: httpx.Client) -> None:
    _create(http)
    response = http.put("/v2/users/296-1", params=BY_MEMBER, json={"last_name": "Li", "is_active": 0})
    assert (response.json()["last_name"], response.json()["first_name"], response.json()["is_active"]) == (
        "Li",
        "Ann",
        False,
    )


# -- a taken third_party_id: a switch, since CrowdTwist does not publish what it does ---------------------------------


def test_a_taken_third_party_id_is_refused_in_the_configured_words(http: httpx.Client) -> None:
    http.post("/_sandbox/rules", json={"third_party_id_taken": "third_party_id must be unique"}).raise_for_status()
    _create(http)
    response = http.post("/v2/users", json={**ANN, "email_address": "other@example.com"})
    assert response.json() == {"error": guesses.BAD_REQUEST, "message": "third_party_id must be unique"}


def test_accepting_duplicates_makes_a_second_user_found_after_the_first(
    server: SandboxServer, http: httpx.Client
) -> None:
    server.state.set_rules(duplicate_third_party_id="accept")
    first = _create(http)
    second = _create(http, email_address="other@example.com")
    assert second["id"] != first["id"]
    assert server.state.users_with_third_party_id("296-1") == 2
    assert http.get("/v2/users/296-1/", params=BY_MEMBER).json()["id"] == first["id"]


def test_with_email_checked_first_a_repeated_create_is_refused_for_its_email(
    server: SandboxServer, http: httpx.Client
) -> None:
    server.state.set_rules(email_checked_first=True)
    _create(http)
    assert http.post("/v2/users", json=ANN).json()["message"] == "Email Address is already taken"


def test_rules_come_back_on_reset_as_the_constructor_set_them() -> None:
    state = SandboxState(rules=None)
    state.set_rules(duplicate_third_party_id="accept")
    state.reset()
    assert state.stats()["rules"]["duplicate_third_party_id"] == "refuse"
    with pytest.raises(ValueError, match="unknown rule"):
        state.set_rules(no_such_rule=True)
    with pytest.raises(ValueError, match="'refuse' or 'accept'"):
        state.set_rules(duplicate_third_party_id="sometimes")


# -- deletion: asynchronous, on the sandbox clock --------------------------------------------------------------------


def test_deletion_advances_on_the_sandbox_clock_and_the_member_stays_readable_until_completed(
    server: SandboxServer, http: httpx.Client
) -> None:
    user_id = _create(http)["id"]
    assert http.delete("/v2/users/296-1", params=BY_MEMBER).json() == {"user_id": user_id, "status": "Queued"}
    statuses = []
    for _ in range(3):
        status = http.get(f"/v2/users/delete/{user_id}").json()
        statuses.append((status["status"], len(status["status_history"])))
        if status["status"] != "Deletion_completed":
            assert http.get("/v2/users/296-1/", params=BY_MEMBER).status_code == 200
        http.post("/_sandbox/advance", json={"seconds": guesses.DELETION_STEP_SECONDS}).raise_for_status()
    assert statuses == [("Deletion_initiated", 1), ("Deletion_in_progress", 2), ("Deletion_completed", 3)]
    assert http.get("/v2/users/296-1/", params=BY_MEMBER).status_code == 404
    assert http.get(f"/v2/user_deletion/{user_id}").json()["status"] == "Deletion_completed"  # the other path
    assert server.state.users_with_third_party_id("296-1") == 0


def test_a_second_deletion_request_while_one_is_under_way_is_refused(http: httpx.Client) -> None:
    _create(http)
    http.delete("/v2/users/296-1", params=BY_MEMBER).raise_for_status()
    response = http.delete("/v2/users/296-1", params=BY_MEMBER)
    assert (response.status_code, response.json()["message"]) == (400, guesses.DELETION_ALREADY_REQUESTED)


def test_an_inactive_member_with_redeemable_points_cannot_be_deleted(http: httpx.Client) -> None:
    _create(http)
    credit = http.post("/v2/users/296-1/activities", params=BY_MEMBER, json={"activity_id": "a", "num_points": 50})
    assert credit.json() == {"awarded": True}
    http.put("/v2/users/296-1", params=BY_MEMBER, json={"is_active": 0}).raise_for_status()
    response = http.delete("/v2/users/296-1", params=BY_MEMBER)
    assert response.status_code == 400
    assert response.json()["message"] == "Member is inactive but has redeemable points"


# -- paged lists ------------------------------------------------------------------------------------------------------


def test_a_list_is_served_page_by_page_by_any_id_type(server: SandboxServer, http: httpx.Client) -> None:
    user_id = _create(http)["id"]
    server.state.add_list_items(user_id, "activity_history", [{"n": n} for n in range(30)])
    pages = [
        http.get("/v2.1/users/296-1/activity_history", params={**BY_MEMBER, "page": page, "page_size": 25}).json()
        for page in (1, 2, 3)
    ]
    assert [len(page) for page in pages] == [25, 5, 0]  # a page past the end is empty
    assert pages[1][0] == {"n": 25}


@pytest.mark.parametrize(
    ("path", "maximum"), [("/v2.1/users/{id}/rewards", 10), ("/v2.2/users/{id}/redemption_history", 25)]
)
def test_a_page_size_above_the_documented_maximum_is_lowered_to_it(
    server: SandboxServer, http: httpx.Client, path: str, maximum: int
) -> None:
    user_id = _create(http)["id"]
    server.state.add_list_items(user_id, path.rsplit("/", 1)[1], [{"n": n} for n in range(40)])
    assert len(http.get(path.format(id=user_id), params={"page_size": 100}).json()) == maximum


def test_lists_live_under_their_published_version_only(http: httpx.Client) -> None:
    user_id = _create(http)["id"]
    assert http.get(f"/v2.1/users/{user_id}/rewards").status_code == 200
    assert http.get(f"/v2/users/{user_id}/rewards").status_code == 404
    assert http.get(f"/v2.1/users/{user_id}/rewards", params={"page": 0}).status_code == 400


# -- keys, cookies, faults, the limit, counters ------------------------------------------------------------------------


def test_a_wrong_or_missing_key_gets_403() -> None:
    with SandboxServer(SandboxState(api_key="right")) as server, httpx.Client(base_url=server.url) as http:
        wrong = http.get("/v2/users/1/", params={"api_key": "wrong"})
        assert (wrong.status_code, wrong.json()["error"]) == (403, guesses.INVALID_API_KEY[0])
        assert http.get("/v2/users/1/").status_code == 403
        assert http.get("/v2/users/1/", params={"api_key": "right"}).status_code == 404
        assert http.get("/v2/users/1/", headers={"X-CT-Authorization": "CTApiKey right"}).status_code == 404


def test_create_sets_a_session_cookie_and_requests_carrying_cookies_are_counted(
    server: SandboxServer, http: httpx.Client
) -> None:
    response = http.post("/v2/users", json=ANN)
    assert "set-cookie" in response.headers
    http.get("/v2/users/296-1/", params=BY_MEMBER)  # httpx's default client keeps and returns the cookie
    assert server.state.stats()["requests_with_cookies"] == 1


def test_down_serves_a_503_html_page(server: SandboxServer, http: httpx.Client) -> None:
    server.state.set_faults(down=True)
    response = http.get("/v2/users/296-1/", params=BY_MEMBER)
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html"


def test_the_leaky_bucket_answers_429_past_the_limit(server: SandboxServer, http: httpx.Client) -> None:
    server.state.set_faults(rate_limit_per_minute=600)  # 10/s, one second of burst
    statuses = [http.get("/v2/users/296-1/", params=BY_MEMBER).status_code for _ in range(30)]
    assert statuses.count(429) >= 10
    assert server.state.stats()["rate_limited"] == statuses.count(429)


def test_faults_and_stats_are_driven_over_http(http: httpx.Client) -> None:
    assert http.post("/_sandbox/faults", json={"error_rate": 1.0}).status_code == 200
    assert http.get("/v2/users/296-1/").status_code == 500
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


def test_a_slow_answer_does_not_hold_up_others(server: SandboxServer) -> None:
    server.state.set_faults(latency=0.5)
    durations: list[float] = []

    def call() -> None:
        started = time.monotonic()
        httpx.get(server.url + "/v2/users/1/")
        durations.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.state.set_faults(latency=0.0)
    assert time.monotonic() - started < 10 * 0.5, "latency was served one request at a time"
