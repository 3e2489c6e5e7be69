"""The Siebel REST adapter's requests and error mapping (respx), and the searchspec it builds and the emulator reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from pydantic import SecretStr

from config.settings import SiebelSettings
from sandbox.siebel import search
from siebel_adapter import searchspec
from siebel_adapter.rest_store import SiebelRestStore
from sync_worker.core.errors import ConfigurationError, PermanentError, TransientError, UnknownField
from tests.builders import siebel_member

BASE = "https://siebel.example.com/siebel/v1.0"
COLLECTION = "/data/LOY%20Member/LOY%20Member"
SETTINGS = SiebelSettings(backend="rest", base_url=BASE, username="CTSYNC", password=SecretStr("s1ebel-pw"))


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE) as router:
        yield router


def test_a_lookup_sends_a_quoted_searchspec_with_basic_auth(mock: respx.MockRouter) -> None:
    route = mock.get(COLLECTION).respond(200, json={"items": [siebel_member(**{"Member Number": "296-1"})]})
    member = SiebelRestStore(SETTINGS).get_member("296-1' OR '1'='1")
    assert member is not None
    request = route.calls.last.request
    assert request.url.params["searchspec"] == "[Member Number] = '296-1'' OR ''1''=''1'"
    assert request.url.params["uniformresponse"] == "yes"
    assert request.headers["authorization"].startswith("Basic ")


def test_no_data_is_no_member(mock: respx.MockRouter) -> None:
    mock.get(COLLECTION).respond(404, json={"ERROR": "There is no data for the requested resource"})
    assert SiebelRestStore(SETTINGS).get_member("296-9") is None


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (httpx.Response(503, text="Service Unavailable"), TransientError, f"Siebel unavailable at {BASE}: HTTP 503"),
        (httpx.ConnectError("refused"), TransientError, f"Siebel unreachable at {BASE}: ConnectError: refused"),
        (httpx.ReadTimeout("slow"), TransientError, f"Siebel unreachable at {BASE}: ReadTimeout: slow"),
        (
            httpx.Response(401, json={"ERROR": "Unauthorized"}),
            ConfigurationError,
            f"Siebel at {BASE} refused the credentials (HTTP 401: Unauthorized): check CTSYNC_SIEBEL__USERNAME",
        ),
        (
            httpx.Response(404, json={"ERROR": "Business object not found"}),
            ConfigurationError,
            f"Siebel at {BASE} does not know business object 'LOY Member' / component 'LOY Member'",
        ),
        # The same codes without Siebel's {"ERROR": …}: another server answered, not Siebel.
        (httpx.Response(404, text="Not Found"), ConfigurationError, f"{BASE} answered HTTP 404 with text"),
        (httpx.Response(403, html="<h1>Forbidden</h1>"), ConfigurationError, "HTTP 403 with an HTML page"),
        (httpx.Response(200, json={"status": "ok"}), ConfigurationError, 'not Siebel\'s ({"items": …} expected)'),
        # A gateway's login page answered 200 is Siebel's problem, never CrowdTwist's, and never a crash.
        (httpx.Response(200, text="<html><form>Sign in</form></html>"), TransientError, "not JSON"),
        (httpx.Response(400, json={"ERROR": "Value too long for CT Sync Error"}), PermanentError, "HTTP 400"),
    ],
)
def test_failures_map_to_the_error_tree(mock: respx.MockRouter, answer: object, error: type, text: str) -> None:
    mock.get(COLLECTION).mock(side_effect=[answer])
    with pytest.raises(error, match=re.escape(text)) as caught:
        SiebelRestStore(SETTINGS).get_member("296-1")
    assert "s1ebel-pw" not in str(caught.value)


def test_siebel_refusing_a_field_of_the_searchspec_is_an_unknown_field_with_the_nearest(
    mock: respx.MockRouter,
) -> None:
    refusal = (
        "Field 'Teir' does not exist in definition for business component 'LOY Member'. Please ask your systems "
        "administrator to check your application configuration.(SBL-DAT-00398)"
    )
    one_record = {"items": [{**siebel_member(Tier="Gold"), "Link": []}]}
    mock.get(COLLECTION).mock(
        side_effect=[httpx.Response(500, json={"ERROR": refusal}), httpx.Response(200, json=one_record)]
    )
    with pytest.raises(UnknownField) as caught:
        list(SiebelRestStore(SETTINGS).find_matching([("Teir", "Gold")]))
    assert caught.value.message == f"Siebel's LOY Member at {BASE} has no field 'Teir' (the nearest: 'Tier')"


def test_the_outcome_is_a_put_by_row_id(mock: respx.MockRouter) -> None:
    from sync_worker.core.member import SyncOutcome, SyncStatus

    route = mock.put(f"{COLLECTION}/1-ABC").respond(200, json={"items": {"Id": "1-ABC"}})
    outcome = SyncOutcome(status=SyncStatus.SYNCED, ct_user_id=42, at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    SiebelRestStore(SETTINGS).write_outcome("1-ABC", outcome)
    assert route.calls.last.request.content == (
        b'{"CT Sync Status":"Synced","CT Sync Error":"","CT Sync Time":"11/22/2026 10:00:00","CT User Id":"42"}'
    )


def test_a_bearer_token_replaces_basic_auth(mock: respx.MockRouter) -> None:
    route = mock.get(COLLECTION).respond(200, json={"items": []})
    settings = SETTINGS.model_copy(update={"bearer_token": SecretStr("oauth-token-123456")})
    SiebelRestStore(settings).get_member("296-1")
    assert route.calls.last.request.headers["authorization"] == "Bearer oauth-token-123456"


@pytest.mark.parametrize(
    ("spec", "record", "matches"),
    [
        ("[Member Number] = '296-1'", {"Member Number": "296-1"}, True),
        ("[Member Number] = '296-1'' OR ''1''=''1'", {"Member Number": "296-1"}, False),
        ("[Member Number] = '296-1'' OR ''1''=''1'", {"Member Number": "296-1' OR '1'='1"}, True),
        ("([S] = 'A' OR [S] = 'B') AND [T] >= '11/22/2026 10:00:00'", {"S": "B", "T": "2026-11-22T11:00:00Z"}, True),
        ("([S] = 'A' OR [S] = 'B') AND [T] >= '11/22/2026 10:00:00'", {"S": "B", "T": "11/21/2026 11:00:00"}, False),
        ("[Updated] > '11/22/2026 10:00:00'", {"Updated": "2026-11-22T10:00:01.5Z"}, True),
    ],
)
def test_the_emulator_reads_the_searchspec_subset(spec: str, record: dict[str, str], matches: bool) -> None:
    assert search.parse(spec)(record) is matches


@pytest.mark.parametrize(
    "spec", ["[Member Number] = 296-1", "[Member Number] = '1' OR 1=1", "[A] = 'x' AND", "([A] = 'x'", "DROP"]
)
def test_anything_outside_the_subset_is_refused(spec: str) -> None:
    with pytest.raises(search.SearchspecError):
        search.parse(spec)


@pytest.mark.parametrize(
    ("spec", "bound"),
    [
        ("[Id] > '1-9'", (">", "1-9")),
        ("([S] = 'A' OR [S] = 'B') AND [Id] > '1-9'", (">", "1-9")),
        ("[Id] = '1-5' OR [Id] = '1-5'", ("=", "1-5")),
        ("[Id] = '1-5' OR [Id] > '1-3'", (">=", "1-3")),
        ("[Id] = '1-5' OR [S] = 'A'", None),  # an OR branch that leaves Id free bounds nothing
        ("[S] = 'A'", None),
    ],
)
def test_the_emulator_reads_the_bound_a_searchspec_puts_on_a_field(spec: str, bound: tuple[str, str] | None) -> None:
    assert search.lower_bound(search.parse_tree(spec), "Id") == bound


def test_the_emulator_recognises_the_keyset_page_the_adapter_builds() -> None:
    moment = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    built = searchspec.all_of("[Status] = 'Active'", searchspec.after_key("Updated", moment, "Id", "1-7"))
    assert search.key_after(search.parse_tree(built), "Updated", "Id") == ("11/22/2026 10:00:00", "1-7")


def test_an_error_text_longer_than_the_field_is_cut_before_it_is_written(mock: respx.MockRouter) -> None:
    from sync_worker.core.member import SyncOutcome, SyncStatus

    route = mock.put(f"{COLLECTION}/1-ABC").respond(200, json={"items": {"Id": "1-ABC"}})
    outcome = SyncOutcome(status=SyncStatus.DATA_ERROR, error="x" * 1000, at=datetime(2026, 11, 22, tzinfo=UTC))
    SiebelRestStore(SETTINGS.model_copy(update={"error_field_length": 100})).write_outcome("1-ABC", outcome)
    written = json.loads(route.calls.last.request.content)["CT Sync Error"]
    assert len(written) == 100
    assert written.endswith("…")
