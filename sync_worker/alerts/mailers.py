"""Adapters for the `Mailer` port: SMTP (standard library, STARTTLS and login), or `.eml` files in the outbox
when no SMTP server is configured or an alert has no recipient. SMTP failures become `TransientError`s; the
password never reaches a message. An alert goes to its own recipients (a job's `notify_to`) when it names some.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from config.settings import AlertsSettings, Settings
from sync_worker.core.errors import ConfigurationError, TransientError
from sync_worker.core.ports import Alert, Mailer


def compose(alert: Alert, *, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = sender
    message["To"] = ", ".join(alert.to or recipients) or "undisclosed-recipients:;"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="ct-sync")
    message.set_content(alert.body)
    return message


class OutboxMailer:
    """Writes each alert as an RFC 5322 `.eml` file; names sort by time."""

    def __init__(self, outbox: Path, *, sender: str, recipients: list[str]) -> None:
        self.outbox = outbox
        self._sender = sender
        self._recipients = recipients
        self.written: list[Path] = []

    def send(self, alert: Alert) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.outbox / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(compose(alert, sender=self._sender, recipients=self._recipients).as_bytes())
        os.replace(temporary, path)
        self.written.append(path)


class SmtpMailer:
    def __init__(self, settings: AlertsSettings, *, timeout: float = 30.0, no_recipient: Mailer | None = None) -> None:
        self._settings = settings
        self._timeout = timeout
        self._no_recipient = no_recipient  # where an alert with nobody to send it to is kept (the outbox)

    def send(self, alert: Alert) -> None:
        settings = self._settings
        if not (alert.to or settings.to) and self._no_recipient is not None:
            self._no_recipient.send(alert)
            return
        message = compose(alert, sender=settings.sender, recipients=settings.to)
        try:
            with self._session() as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unreachable(exc) from None

    def probe(self) -> str:
        """Connect, upgrade and log in as `send` does, and send nothing (`ct-sync check`). A refused login raises
        `ConfigurationError` (it will not pass by waiting), anything else `TransientError`."""
        settings = self._settings
        try:
            with self._session() as smtp:
                smtp.noop()
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigurationError(
                f"SMTP login refused ({exc.smtp_code}): "
                "check CTSYNC_ALERTS__SMTP_USERNAME and CTSYNC_ALERTS__SMTP_PASSWORD",
                system="smtp",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unreachable(exc) from None
        return f"{settings.smtp_host}:{settings.smtp_port}"

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        settings = self._settings
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=self._timeout) as smtp:
            if settings.starttls:
                # The mail server's own CA when named, as for CrowdTwist and Siebel: SSL_CERT_FILE would do it too,
                # but for the whole process, the HTTP clients included.
                smtp.starttls(context=ssl.create_default_context(cafile=settings.ca_bundle))
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            yield smtp

    def _unreachable(self, exc: BaseException) -> TransientError:
        settings = self._settings
        return TransientError(
            f"SMTP {settings.smtp_host}:{settings.smtp_port} failed: {type(exc).__name__}", system="smtp"
        )


def build_mailer(settings: Settings) -> Mailer:
    alerts = settings.alerts
    outbox = OutboxMailer(settings.outbox_dir, sender=alerts.sender, recipients=alerts.to)
    if alerts.smtp_host:
        return SmtpMailer(alerts, no_recipient=outbox)
    return outbox
