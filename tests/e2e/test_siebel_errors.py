"""What an operator reads when the Siebel REST settings point at the wrong thing: the URL and the real cause, once,
telling "not Siebel at all" (no Siebel-shaped answer) from a refused login and an unknown business object, as
`check` does for CrowdTwist. Read through the CLI at 80 columns: `preview` (one line, the exit code of design.md)
and `check --json` (the detail a deployment script reads).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from typer.testing import CliRunner

from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from sync_worker.http import BackgroundServer
from tests.alerts.conftest import free_port

runner = CliRunner(env={"COLUMNS": "80"})
PASSWORD = "emulator-pw-5c1d"


def use_siebel(monkeypatch: pytest.MonkeyPatch, base_url: str, *, password: str = PASSWORD) -> None:
    monkeypatch.setenv("CTSYNC_SIEBEL__BACKEND", "rest")
    monkeypatch.setenv("CTSYNC_SIEBEL__BASE_URL", base_url)
    monkeypatch.setenv("CTSYNC_SIEBEL__USERNAME", "CTSYNC")
    monkeypatch.setenv("CTSYNC_SIEBEL__PASSWORD", password)


def preview() -> tuple[int, str]:
    """`ct-sync preview --member 296-1`: it reads one member from Siebel, and says why it cannot."""
    result = runner.invoke(app, ["preview", "--member", "296-1"])
    return result.exit_code, result.stderr


def siebel_check() -> tuple[int, dict[str, str]]:
    result = runner.invoke(app, ["check", "--json"])
    checks = {check["system"]: check for check in json.loads(result.stdout)["checks"]}
    return result.exit_code, checks["siebel"]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SiebelEmulatorServer]:
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    with SiebelEmulatorServer(SiebelEmulator(store, username="CTSYNC", password=PASSWORD)) as server:
        yield server


def foreign_app(status: int) -> Starlette:
    """Another HTTP server (a web server, a portal): an HTML page with this status for every path."""

    def page(_request: Request) -> HTMLResponse:
        return HTMLResponse(f"<html><body><h1>{status}</h1><p>Go away.</p></body></html>", status_code=status)

    return Starlette(routes=[Route("/{path:path}", page, methods=["GET", "PUT"])])


def test_siebel_unreachable_names_the_url_and_the_cause_once(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/siebel/v1.0"  # nothing listens there
    use_siebel(monkeypatch, url)
    code, said = preview()
    assert code == 75
    assert said == f"ct-sync: Siebel unreachable at {url}: ConnectError: [Errno 111] Connection refused\n"
    code, siebel = siebel_check()
    assert (code, siebel["result"]) == (75, "unreachable")
    assert siebel["detail"] == f"Siebel unreachable at {url}: ConnectError: [Errno 111] Connection refused"


def test_credentials_in_the_url_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    use_siebel(monkeypatch, f"http://CTSYNC:url-secret-77@127.0.0.1:{port}/siebel/v1.0")
    code, said = preview()
    assert code == 75
    assert said == (
        f"ct-sync: Siebel unreachable at http://CTSYNC:[REDACTED]@127.0.0.1:{port}/siebel/v1.0: "
        "ConnectError: [Errno 111] Connection refused\n"
    )


@pytest.mark.parametrize("status", [403, 404, 401])
def test_a_server_that_is_not_siebel_is_named_as_such_not_as_a_refused_login_or_object(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    with BackgroundServer(foreign_app(status)) as other:
        url = f"{other.url}/siebel/v1.0"
        use_siebel(monkeypatch, url)
        code, said = preview()
        check_code, siebel = siebel_check()
    login = " (or a proxy in front of Siebel refused the login)" if status != 404 else ""
    words = (
        f"{url} answered HTTP {status} with an HTML page, not Siebel's {{\"ERROR\": …}}{login}: not Siebel's REST "
        "API (is CTSYNC_SIEBEL__BASE_URL Siebel's, up to and including /siebel/v1.0?)"
    )
    assert (code, said) == (2, f"ct-sync: {words}\n")
    assert (check_code, siebel["result"], siebel["detail"]) == (2, "configuration", words)
    assert "refused the credentials" not in said
    assert "does not know" not in said


def test_siebel_refusing_the_password_says_so_and_names_the_settings(
    monkeypatch: pytest.MonkeyPatch, emulator: SiebelEmulatorServer
) -> None:
    use_siebel(monkeypatch, emulator.base_url, password="not-the-password")
    code, said = preview()
    words = (
        f"Siebel at {emulator.base_url} refused the credentials (HTTP 401: Unauthorized): check "
        "CTSYNC_SIEBEL__USERNAME and __PASSWORD"
    )
    assert (code, said) == (2, f"ct-sync: {words}\n")
    check_code, siebel = siebel_check()
    assert (check_code, siebel["result"], siebel["detail"]) == (2, "configuration", words)
    assert "not-the-password" not in said


def test_a_business_object_siebel_does_not_know_is_named_with_its_settings(
    monkeypatch: pytest.MonkeyPatch, emulator: SiebelEmulatorServer
) -> None:
    use_siebel(monkeypatch, emulator.base_url)
    monkeypatch.setenv("CTSYNC_SIEBEL__BUSINESS_OBJECT", "Loyalty Member")
    code, said = preview()
    words = (
        f"Siebel at {emulator.base_url} does not know business object 'Loyalty Member' / component 'LOY Member' "
        "(HTTP 404: Business object 'Loyalty Member' is not available): check CTSYNC_SIEBEL__BUSINESS_OBJECT and "
        "__BUSINESS_COMPONENT"
    )
    assert (code, said) == (2, f"ct-sync: {words}\n")
    check_code, siebel = siebel_check()
    assert (check_code, siebel["result"], siebel["detail"]) == (2, "configuration", words)


def test_siebel_answering_is_ok_and_check_names_where(
    monkeypatch: pytest.MonkeyPatch, emulator: SiebelEmulatorServer
) -> None:
    use_siebel(monkeypatch, emulator.base_url)
    _, siebel = siebel_check()
    assert siebel == {"system": "siebel", "result": "ok", "detail": f"{emulator.base_url}, LOY Member / LOY Member"}
    assert preview() == (1, "ct-sync preview: no member 296-1 in Siebel\n")
