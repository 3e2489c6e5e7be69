"""`ct-sync check` never passes by mistake: a server that is not CrowdTwist, a refused login and a missing driver
are configuration problems (exit 2), each named; an outage is 75; `--json` says the same to a script."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from sync_worker.cli import app
from sync_worker.http import BackgroundServer, health_app
from tests.conftest import require_server

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(api_key="sandbox-key-77")) as server:
        monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", server.url)
        monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", "sandbox-key-77")
        yield server


def checks(output: str) -> dict[str, dict[str, str]]:
    document = json.loads(output)
    return {check["system"]: check for check in document["checks"]}


def test_every_system_answering_is_exit_0_and_says_so_in_json(sandbox: SandboxServer) -> None:
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exit_code"] == 0
    assert {check["result"] for check in checks(result.stdout).values()} == {"ok"}


@pytest.mark.parametrize("path", ["", "/crowdtwist"], ids=["a metrics port", "a path CrowdTwist does not serve"])
def test_a_404_from_a_server_that_is_not_crowdtwist_fails_with_exit_2(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    with BackgroundServer(health_app(registry=None, readiness=dict)) as metrics:
        monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", (sandbox.url + path) if path else metrics.url)
        result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 2, result.output
    crowdtwist = checks(result.stdout)["crowdtwist"]
    assert crowdtwist["result"] == "configuration"
    assert "not CrowdTwist's API (is CTSYNC_CROWDTWIST__BASE_URL its host root?)" in crowdtwist["detail"]


def test_refused_crowdtwist_credentials_are_a_configuration_problem(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", "revoked-key-0123")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2, result.output
    assert "configuration" in result.stdout
    assert "credentials refused" in result.stdout
    assert "revoked-key-0123" not in result.stdout


def test_a_postgresql_ledger_without_its_driver_is_named_not_a_traceback(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setenv("CTSYNC_LEDGER__URL", "postgresql://ct-sync@127.0.0.1:1/ct_sync")
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 2, result.output
    assert "pip install 'ct-sync[postgres]'" in checks(result.stdout)["ledger"]["detail"]


def test_rabbitmq_refusing_the_login_is_a_configuration_problem(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, rabbitmq_url: str
) -> None:
    monkeypatch.setenv("CTSYNC_BROKER__URL", rabbitmq_url.replace("guest:guest", "guest:wrong-password"))
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 2, result.output
    broker = checks(result.stdout)["broker"]
    assert broker == {
        "system": "broker",
        "result": "configuration",
        "detail": "RabbitMQ refused the login: check the user and password of CTSYNC_BROKER__URL",
    }


@pytest.mark.parametrize(("where", "result"), [("127.0.0.1:6379", "ok"), ("127.0.0.1:1", "unreachable")])
def test_the_shared_crowdtwist_budget_is_checked_where_one_is_set(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, where: str, result: str
) -> None:
    require_server("Redis", "127.0.0.1", 6379)  # pinged only: nothing is read or written there
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BUDGET_URL", f"redis://{where}/0")
    outcome = runner.invoke(app, ["check", "--json"])
    assert outcome.exit_code == (0 if result == "ok" else 75), outcome.output
    assert checks(outcome.stdout)["budget"]["result"] == result
