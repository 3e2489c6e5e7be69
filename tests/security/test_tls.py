"""TLS is verified by default for CrowdTwist, Siebel and the mail server; a private CA is trusted only when named;
there is no switch that turns verification off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr

from config.settings import AlertsSettings, CrowdTwistSettings, SiebelSettings
from crowdtwist_client.client import CrowdTwistClient
from sandbox.crowdtwist import SandboxState, create_sandbox_app
from siebel_adapter.rest_store import SiebelRestStore
from sync_worker.core.errors import TransientError
from sync_worker.http import BackgroundServer


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sandbox over HTTPS with a certificate from a private CA; yields its URL and the CA bundle."""
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server_pem, ca_pem = folder / "server.pem", folder / "ca.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    authority.cert_pem.write_to_path(str(ca_pem))
    app = create_sandbox_app(SandboxState())
    with BackgroundServer(app, ssl_certfile=str(server_pem), ssl_keyfile=str(server_pem)) as server:
        yield server.url, ca_pem


def test_crowdtwist_refuses_a_certificate_it_cannot_verify(tls_sandbox: tuple[str, Path]) -> None:
    url, _ = tls_sandbox
    with (
        CrowdTwistClient(base_url=url, api_key="k3y-0123456789", retry_attempts=1) as client,
        pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get_user("296-1")


def test_crowdtwist_trusts_a_named_private_ca(tls_sandbox: tuple[str, Path]) -> None:
    url, ca_bundle = tls_sandbox
    with CrowdTwistClient(base_url=url, api_key="k3y-0123456789", ca_bundle=ca_bundle) as client:
        assert client.get_user("296-1") is None  # reached: a 404 answer


def test_siebel_refuses_a_certificate_it_cannot_verify(tls_sandbox: tuple[str, Path]) -> None:
    url, _ = tls_sandbox
    settings = SiebelSettings(backend="rest", base_url=url + "/siebel/v1.0", username="u", password=SecretStr("p"))
    store = SiebelRestStore(settings)
    with pytest.raises(TransientError, match=r"Siebel unreachable at .*: ConnectError"):
        store.get_member("296-1")
    store.close()


def test_no_setting_can_switch_verification_off() -> None:
    for section in (CrowdTwistSettings, SiebelSettings, AlertsSettings):
        names = set(section.model_fields)
        assert not names & {"verify", "verify_tls", "insecure", "tls_verify", "ssl_verify"}, section.__name__
        assert "ca_bundle" in names
