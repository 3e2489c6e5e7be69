"""Alerts through a real SMTP server: delivered, retried while the server is down, STARTTLS and login."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr

from config.settings import AlertsSettings, Settings
from sync_worker.alerts.dispatcher import AlertDispatcher
from sync_worker.alerts.mailers import OutboxMailer, SmtpMailer, build_mailer
from sync_worker.core.errors import ConfigurationError, TransientError
from sync_worker.core.ports import Alert
from tests.alerts.conftest import SmtpServer, free_port
from tests.integration.helpers import eventually

ALERT = Alert(subject="[ct-sync] 1 member(s) not synced", body="296-1  Data Error: Email Address is already taken\n")


def settings(port: int, **fields: object) -> AlertsSettings:
    return AlertsSettings(to=["admins@example.com"], smtp_host="127.0.0.1", smtp_port=port, **fields)  # type: ignore[arg-type]


def test_an_alert_reaches_the_smtp_server(smtp: SmtpServer) -> None:
    SmtpMailer(settings(smtp.port)).send(ALERT)
    assert smtp.inbox.subjects == [ALERT.subject]
    message = smtp.inbox.messages[0]
    assert message["To"] == "admins@example.com"
    assert "Email Address is already taken" in message.get_payload()  # type: ignore[operator]


def test_starttls_and_login_are_used_when_configured(starttls_smtp: SmtpServer) -> None:
    mailer = SmtpMailer(
        settings(starttls_smtp.port, starttls=True, smtp_username="ct", smtp_password=SecretStr("smtp-pw-123"))
    )
    mailer.send(ALERT)
    assert starttls_smtp.inbox.subjects == [ALERT.subject]
    wrong = SmtpMailer(
        settings(starttls_smtp.port, starttls=True, smtp_username="ct", smtp_password=SecretStr("nope-pw-456")),
        timeout=2,
    )
    with pytest.raises(TransientError) as caught:
        wrong.send(ALERT)
    assert "nope-pw-456" not in str(caught.value)


def test_a_private_ca_named_by_ca_bundle_is_trusted_for_starttls_and_no_other_is(
    certificate_authority: trustme.CA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The mail server's CA is named by its own setting, not by SSL_CERT_FILE (which would change the trust of the
    whole process, the CrowdTwist and Siebel clients included)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(bundle))
    server = SmtpServer(free_port(), tls=server_context, password="smtp-pw-123").start()
    login = {"starttls": True, "smtp_username": "ct", "smtp_password": SecretStr("smtp-pw-123")}
    try:
        with pytest.raises(TransientError, match="SSLCertVerificationError"):
            SmtpMailer(settings(server.port, **login), timeout=5).send(ALERT)
        SmtpMailer(settings(server.port, ca_bundle=bundle, **login)).send(ALERT)
        assert server.inbox.subjects == [ALERT.subject]
        assert server.inbox.sessions == [(True, True)]
    finally:
        server.stop()


def test_smtp_down_never_blocks_and_the_alert_arrives_once_it_is_back() -> None:
    port = free_port()
    dispatcher = AlertDispatcher(SmtpMailer(settings(port), timeout=2), wait=lambda event, seconds: event.wait(0.1))
    started = time.monotonic()
    dispatcher.submit(ALERT)
    assert time.monotonic() - started < 0.5, "submit() waited for the mail server"
    time.sleep(0.5)  # a few failed attempts
    server = SmtpServer(port).start()
    try:
        eventually(lambda: server.inbox.subjects == [ALERT.subject], timeout=15)
    finally:
        dispatcher.close()
        server.stop()


def test_without_smtp_alerts_are_eml_files_in_the_outbox(tmp_path: Path) -> None:
    mailer = build_mailer(Settings(data_dir=tmp_path, alerts={"to": ["admins@example.com"]}))
    assert isinstance(mailer, OutboxMailer)
    mailer.send(ALERT)
    (written,) = list((tmp_path / "outbox").glob("*.eml"))
    text = written.read_text()
    assert f"Subject: {ALERT.subject}" in text
    assert "To: admins@example.com" in text


def test_a_full_dispatcher_drops_the_oldest_alert_not_the_caller() -> None:
    gate = threading.Event()

    class SlowMailer:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, alert: Alert) -> None:
            gate.wait(5)
            self.sent.append(alert.subject)

    mailer = SlowMailer()
    dispatcher = AlertDispatcher(mailer, capacity=2)
    for number in range(5):
        dispatcher.submit(Alert(subject=f"alert {number}", body=""))
    gate.set()
    dispatcher.close()
    assert mailer.sent[-2:] == ["alert 3", "alert 4"]


def test_probe_logs_in_over_starttls_and_names_the_settings_when_refused(starttls_smtp: SmtpServer) -> None:
    """What `ct-sync check` runs: connect, STARTTLS, log in, send nothing; a refused login is configuration."""
    good = settings(starttls_smtp.port, starttls=True, smtp_username="ct", smtp_password=SecretStr("smtp-pw-123"))
    assert SmtpMailer(good).probe() == f"127.0.0.1:{starttls_smtp.port}"
    assert starttls_smtp.inbox.subjects == []
    wrong = settings(starttls_smtp.port, starttls=True, smtp_username="ct", smtp_password=SecretStr("nope-pw-456"))
    with pytest.raises(ConfigurationError) as caught:
        SmtpMailer(wrong, timeout=2).probe()
    assert "CTSYNC_ALERTS__SMTP_PASSWORD" in caught.value.message
    assert "nope-pw-456" not in str(caught.value)


def test_probe_of_a_server_that_is_not_there_is_transient() -> None:
    with pytest.raises(TransientError) as caught:
        SmtpMailer(settings(free_port()), timeout=2).probe()
    assert caught.value.system == "smtp"
