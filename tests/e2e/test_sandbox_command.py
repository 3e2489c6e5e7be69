"""`ct-sync sandbox` as a real process: the CrowdTwist sandbox requires the key it is given, as CrowdTwist does; and
`ct-sync check` reaches it with the documented look-up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crowdtwist_client.sandbox import SandboxState
from sync_worker.cli import app
from sync_worker.emulators import SandboxServer
from tests.alerts.conftest import free_port
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC

KEY = "sandbox-key-4f1c9e"


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.parametrize(
    ("arguments", "settings"),
    [(["--api-key", KEY], {}), ([], {"CTSYNC_CROWDTWIST__API_KEY": KEY})],
    ids=["option", "configured key"],
)
def test_the_sandbox_refuses_a_wrong_or_missing_key_with_403(
    tmp_path: Path, arguments: list[str], settings: dict[str, str]
) -> None:
    port, siebel_port, sftp_port = free_port(), free_port(), free_port()
    environment = {**os.environ, "CTSYNC_DATA_DIR": str(tmp_path), **settings}
    ports = ["--port", str(port), "--siebel-port", str(siebel_port), "--sftp-port", str(sftp_port)]
    command = [CT_SYNC, "sandbox", *ports, *arguments]
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as sandbox:
        try:
            url = f"http://127.0.0.1:{port}/v2/users/296-1/"
            eventually(lambda: _answers(url), timeout=60)
            assert httpx.get(url, params={"id_type": "third_party_id"}).status_code == 403
            assert httpx.get(url, params={"id_type": "third_party_id", "api_key": "wrong"}).status_code == 403
            right = httpx.get(url, params={"id_type": "third_party_id", "api_key": KEY})
            assert right.json() == {"error": "page_not_found", "message": "User does not exist."}
        finally:
            sandbox.terminate()
            output, _ = sandbox.communicate(timeout=60)
    assert b"requires the API key of" in output
    assert KEY.encode() not in output


@pytest.mark.parametrize(("key", "exit_code"), [(KEY, 0), ("wrong-key-0123", 2)])
def test_check_reaches_a_sandbox_that_requires_its_key(
    monkeypatch: pytest.MonkeyPatch, key: str, exit_code: int
) -> None:
    with SandboxServer(SandboxState(api_key=KEY)) as sandbox:
        monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", sandbox.url)
        monkeypatch.setenv("CTSYNC_CROWDTWIST__API_KEY", key)
        result = CliRunner().invoke(app, ["check"])
        assert result.exit_code == exit_code, result.output
        assert sandbox.state.stats()["calls"] == {"get_user": 1}  # the documented look-up, answered
    assert ("credentials refused" in result.output) is (exit_code != 0)
