"""`ct-sync check`: reach every configured system with a harmless call and say which answered."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass

from config.redaction import redact_text
from config.settings import Settings
from siebel_adapter.broker import probe_broker
from sync_worker.bootstrap import build_crowdtwist, build_member_store
from sync_worker.core.errors import CtSyncError, NotAuthorized
from sync_worker.ledger.sql import build_ledger
from sync_worker.worker.readiness import PROBE_MEMBER


@dataclass(frozen=True)
class CheckResult:
    system: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> list[CheckResult]:
    return [
        _check("broker", lambda: probe_broker(settings)),
        _check("siebel", lambda: _siebel(settings)),
        _check("crowdtwist", lambda: _crowdtwist(settings)),
        _check("ledger", lambda: _ledger(settings)),
        _check("smtp", lambda: _smtp(settings)),
        _check("sftp", lambda: _sftp(settings)),
    ]


def _check(system: str, probe: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(system, True, probe())
    except CtSyncError as exc:
        return CheckResult(system, False, exc.message)
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult(system, False, redact_text(f"{type(exc).__name__}: {exc}"))


def _siebel(settings: Settings) -> str:
    store = build_member_store(settings)
    try:
        store.get_member(PROBE_MEMBER)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    return settings.siebel.backend


def _crowdtwist(settings: Settings) -> str:
    with build_crowdtwist(settings) as client:
        try:
            client.get_user(PROBE_MEMBER)
        except NotAuthorized as exc:
            raise CtSyncError(f"credentials refused: {exc.message}", system="crowdtwist") from None
    return settings.crowdtwist.base_url


def _ledger(settings: Settings) -> str:
    build_ledger(settings).close()
    return redact_text(settings.ledger_url)


def _smtp(settings: Settings) -> str:
    alerts = settings.alerts
    if not alerts.smtp_host:
        return f"no SMTP server: alerts go to {settings.outbox_dir}"
    with smtplib.SMTP(alerts.smtp_host, alerts.smtp_port, timeout=10) as smtp:
        smtp.noop()
    return f"{alerts.smtp_host}:{alerts.smtp_port}"


def _sftp(settings: Settings) -> str:
    """Log in to CrowdTwist's SFTP server (host key, key, ciphers), upload nothing."""
    if settings.sftp.host is None:
        return f"no SFTP host: segment files go to {settings.drop_folder}"
    from crowdtwist_client.drop.sftp import SftpDrop

    drop = SftpDrop(settings.sftp)
    return f"{drop.destination}, cipher {drop.negotiated_cipher()}"
