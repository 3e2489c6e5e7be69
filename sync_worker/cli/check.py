"""`ct-sync check`: reach every configured system with a harmless call and say which answered, and how each failed.

A check never passes by mistake: CrowdTwist must answer as CrowdTwist does (a 404 from another server is not "no
such user"), so must Siebel (its `{"ERROR": …}` or a page of items, not another server's page), and a refusal of
our credentials, or an answer from the wrong kind of server, is a configuration problem (exit 2), not an outage
(exit 75).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Literal

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.alerts.mailers import SmtpMailer
from sync_worker.bootstrap import build_crowdtwist, build_ledger, build_member_store, probe_broker
from sync_worker.core.errors import ConfigurationError, CtSyncError, NotAuthorized, PermanentError
from sync_worker.worker.readiness import PROBE_MEMBER

Problem = Literal["configuration", "unreachable"]


@dataclass(frozen=True)
class CheckResult:
    system: str
    detail: str
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def run_checks(settings: Settings) -> list[CheckResult]:
    return [
        _check("broker", lambda: probe_broker(settings)),
        _check("siebel", lambda: _siebel(settings)),
        _check("crowdtwist", lambda: _crowdtwist(settings)),
        _check("budget", lambda: _budget(settings)),
        _check("ledger", lambda: _ledger(settings)),
        _check("smtp", lambda: _smtp(settings)),
        _check("sftp", lambda: _sftp(settings)),
    ]


def worst_problem(results: Sequence[CheckResult]) -> Problem | None:
    """A configuration problem outranks an outage: it will not go away by waiting."""
    problems = {result.problem for result in results}
    return "configuration" if "configuration" in problems else "unreachable" if "unreachable" in problems else None


def _check(system: str, probe: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(system, probe())
    except (ConfigurationError, PermanentError) as exc:  # refused credentials, the wrong server, no driver
        return CheckResult(system, exc.message, "configuration")
    except CtSyncError as exc:
        return CheckResult(system, exc.message, "unreachable")
    except OSError as exc:
        return CheckResult(system, redact_text(f"{type(exc).__name__}: {exc}"), "unreachable")


def _siebel(settings: Settings) -> str:
    """A look-up of a member no program has: Siebel must answer it as Siebel does (its "no data" or a page of
    items); another server's answer, a refused login or an unknown business object is a configuration problem,
    each named by the adapter with the URL."""
    with closing(build_member_store(settings)) as store:
        store.get_member(PROBE_MEMBER)
    siebel = settings.siebel
    if siebel.backend == "rest" and siebel.base_url is not None:
        return f"{redact_text(siebel.base_url)}, {siebel.business_object} / {siebel.business_component}"
    return f"the SQLite stand-in {settings.siebel_sqlite_path}"


def _crowdtwist(settings: Settings) -> str:
    with build_crowdtwist(settings) as client:
        try:
            client.identify(PROBE_MEMBER)
        except NotAuthorized as exc:
            raise ConfigurationError(
                f"credentials refused: {exc.message} (check CTSYNC_CROWDTWIST__API_KEY)", system="crowdtwist"
            ) from None
    return settings.crowdtwist.base_url


def _budget(settings: Settings) -> str:
    """The CrowdTwist budget the workers share through Redis, when they do."""
    url = settings.crowdtwist.budget_url
    if url is None:
        return "not shared: each worker paces alone (CTSYNC_CROWDTWIST__BUDGET_URL)"
    from crowdtwist_client.budget import RedisSlots  # the redis extra, only where a budget is shared

    slots = RedisSlots(url, key=settings.crowdtwist.budget_key, fallback_processes=1)
    try:
        slots.ping()
    finally:
        slots.close()
    return redact_text(url)


def _ledger(settings: Settings) -> str:
    build_ledger(settings).close()
    return redact_text(settings.ledger_url)


def _smtp(settings: Settings) -> str:
    """Connect, upgrade and log in as the alerts will; send nothing."""
    if not settings.alerts.smtp_host:
        return f"no SMTP server: alerts go to {settings.outbox_dir}"
    return SmtpMailer(settings.alerts, timeout=10).probe()


def _sftp(settings: Settings) -> str:
    """Log in to CrowdTwist's SFTP server (host key, key, ciphers), upload nothing."""
    if settings.sftp.host is None:
        return f"no SFTP host: segment files go to {settings.drop_folder}"
    from crowdtwist_client.drop.sftp import SftpDrop

    drop = SftpDrop(settings.sftp)
    return f"{drop.destination}, cipher {drop.negotiated_cipher()}"
