"""Oracle's CrowdTwist Starter Kit (tests/fixtures/crowdtwist/, see its README): its captured calls against the
sandbox, and its captured answers against the client. The capture is CrowdTwist's own word, so it wins over our
reading of the docs: every captured request must be answered with the captured status, keys and value types, and
every captured answer the client asks for must be read without an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from crowdtwist_client.client import CrowdTwistClient
from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from sync_worker.core.ct_user import UserPayload

COLLECTION = Path(__file__).parents[1] / "fixtures" / "crowdtwist" / "crowdtwist-starter-kit.postman_collection.json"
API_HOST = "https://{{environment}}api{{client_id}}.crowdtwist.com"
API_KEY = "starter-kit-key-0123456789"
# Calls on the program's own web host (a browser sign-in flow), not the API: no part of ct-sync or the sandbox.
PROGRAM_HOST_CALLS = {"User Authentication Sign In", "User Authentication Sign Out"}
# Objects whose keys each program defines for itself: only their type is compared.
PROGRAM_DEFINED = {".custom_data"}
# The order the captures need: a user first, then the calls about it.
SANDBOX_ORDER = ["User Create", "User Profile", "User Update", "User Activity Credit"]
# Postman's generated values, as one run would have drawn them.
GENERATED = {
    "$randomExampleEmail": "osvaldo.sauer75@example.net",
    "$randomLastName": "DuBuque",
    "$randomFirstName": "Morris",
    "$randomPhoneNumber": "7842479094",
    "$randomUserName": "Broderick_Weimann52",
    "$randomPassword": "pw-7gHq2",
    "activity_id": "sandbox-activity",
    "num_points": "10",
}


def _captures() -> dict[str, dict[str, Any]]:
    """Every captured answer by request name: the request that produced it and the answer."""
    collection = json.loads(COLLECTION.read_text(encoding="utf-8"))
    return {
        item["name"]: answer for folder in collection["item"] for item in folder["item"] for answer in item["response"]
    }


CAPTURES = _captures()


def _filled(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\{\{([^}]+)\}\}", lambda match: variables[match.group(1)], text)


def _shape(value: Any) -> Any:
    """A JSON value's type, recursively for objects and the first item of lists; None for null."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None if value is None else type(value).__name__


def _differences(captured: Any, answered: Any, where: str = "") -> list[str]:
    """Where `answered` differs from `captured` in keys or types; a null on either side matches any type."""
    if captured is None or answered is None:
        return []
    if isinstance(captured, dict) and isinstance(answered, dict):
        if where in PROGRAM_DEFINED:
            return []
        problems = [f"{where}: keys {sorted(set(captured) ^ set(answered))}"] if set(captured) != set(answered) else []
        return problems + [
            problem
            for key in captured.keys() & answered.keys()
            for problem in _differences(captured[key], answered[key], f"{where}.{key}")
        ]
    if isinstance(captured, list) and isinstance(answered, list):
        return _differences(captured[0], answered[0], f"{where}[0]") if captured and answered else []
    return [] if captured == answered else [f"{where}: {answered} where the capture has {captured}"]


def test_the_fixture_holds_every_captured_answer_we_replay() -> None:
    assert set(CAPTURES) == set(SANDBOX_ORDER) | PROGRAM_HOST_CALLS


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(api_key=API_KEY)) as server:
        yield server


def _replay(server: SandboxServer, name: str, variables: dict[str, str]) -> httpx.Response:
    request = CAPTURES[name]["originalRequest"]
    url = _filled(request["url"]["raw"].replace(API_HOST, server.url), variables)
    body = _filled(request["body"]["raw"], variables).encode() if "body" in request else None
    headers = {header["key"]: header["value"] for header in request["header"]}
    # The collection authenticates with the api_key query parameter (its collection-level auth).
    return httpx.request(request["method"], url, params={"api_key": API_KEY}, headers=headers, content=body)


def test_every_captured_request_is_answered_by_the_sandbox_like_the_capture(sandbox: SandboxServer) -> None:
    sandbox.state.reset()
    variables = dict(GENERATED, id_type="id")
    problems: dict[str, list[str]] = {}
    for name in SANDBOX_ORDER:
        response = _replay(sandbox, name, variables)
        captured = CAPTURES[name]
        assert response.status_code == captured["code"], (name, response.text)
        answered = response.json()
        variables.setdefault("user_id", str(answered.get("id")))
        if difference := _differences(_shape(json.loads(captured["body"])), _shape(answered)):
            problems[name] = difference
    assert problems == {}
    assert sandbox.state.stats()["unknown_fields"] == {}  # every field Oracle's calls send is a documented one


# -- the captured answers, replayed to the client ---------------------------------------------------------------------


def _replayed(name: str) -> httpx.Response:
    captured = CAPTURES[name]
    kept = [(header["key"], header["value"]) for header in captured["header"] if header["key"] != "Content-Encoding"]
    return httpx.Response(captured["code"], headers=kept, content=captured["body"].encode())


@pytest.fixture
def replaying() -> Iterator[tuple[respx.MockRouter, CrowdTwistClient]]:
    base = "https://sb-api306.crowdtwist.com"
    with respx.mock(base_url=base) as router, CrowdTwistClient(base_url=base, api_key=API_KEY) as client:
        yield router, client


def test_the_captured_profile_is_read(replaying: tuple[respx.MockRouter, CrowdTwistClient]) -> None:
    router, client = replaying
    router.get("/v2/users/261947736/").mock(return_value=_replayed("User Profile"))
    user = client.get_user_by(261947736, id_type="id")
    assert user is not None
    assert (user.id, user.third_party_id, user.is_active, user.date_of_birth) == (261947736, None, True, None)


def test_the_captured_create_is_read_and_its_cookies_are_not_kept(
    replaying: tuple[respx.MockRouter, CrowdTwistClient],
) -> None:
    router, client = replaying
    router.post("/v2/users").mock(return_value=_replayed("User Create"))
    lookup = router.get("/v2/users/296-1/").respond(
        404, json={"error": "page_not_found", "message": "User does not exist."}
    )
    payload = UserPayload(first_name="Morris", last_name="DuBuque", email_address="osvaldo.sauer75@example.net")
    assert client.create_user(payload).id == 269654579
    assert client.get_user("296-1") is None
    assert "cookie" not in lookup.calls.last.request.headers


def test_the_captured_update_is_read_with_its_text_gender_id(
    replaying: tuple[respx.MockRouter, CrowdTwistClient],
) -> None:
    router, client = replaying
    router.put("/v2/users/253780818").mock(return_value=_replayed("User Update"))
    user = client.update_user("253780818", UserPayload(receive_email_updates=1))
    assert user is not None
    assert (user.id, user.gender_id, user.redeemable_points) == (253780818, 2, 2599)
