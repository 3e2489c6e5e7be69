"""The privacy commands (design.md, "Privacy requests"): `ct-sync privacy access|delete|status|restore`.

Each request's first line is `privacy request R: …`. An access export's JSON goes to stdout (its lines then go to
stderr, so stdout is the document alone) or to `--out FILE`, created owner-only and never over an existing file.
Exit codes: 0 done, 1 an unknown member or request, or CrowdTwist's refusal (shown verbatim), 2 usage or a refused
key, 75 CrowdTwist unreachable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sync_worker.cli.app import AsJson, ExitCode, app, err_console, fail, or_exit, print_json, say, settings_or_exit

if TYPE_CHECKING:
    from config import Settings
    from sync_worker.bootstrap import Privacy
    from sync_worker.core.privacy import Identity, PrivacyRequest, RequestFailed

privacy_app = typer.Typer(no_args_is_help=True, help="Privacy requests: access exports and deletions in CrowdTwist.")
app.add_typer(privacy_app, name="privacy", rich_help_panel="Privacy requests")

Member = Annotated[str | None, typer.Option("--member", help="the member's Member Number")]
Email = Annotated[str | None, typer.Option("--email", help="the member's email address")]
CtUserId = Annotated[str | None, typer.Option("--ct-user-id", help="the member's CrowdTwist id")]
Reference = Annotated[str | None, typer.Option("--reference", help="who asked: the ticket number, kept with it")]


@privacy_app.command("access")
def access(
    member: Member = None,
    email: Email = None,
    ct_user_id: CtUserId = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the JSON here (owner-only); else stdout")] = None,
    reference: Reference = None,
) -> None:
    """Export everything CrowdTwist holds about a member as one JSON document."""
    from sync_worker.core.privacy import NOT_AVAILABLE, RequestFailed

    command = "ct-sync privacy access"
    who = _identity(command, member, email, ct_user_id)
    if out is not None and out.exists():
        fail(ExitCode.CONFIGURATION, f"{command}: {out} exists: name a new file")
    # Lines to stderr when the document takes stdout.
    line: Callable[[str], None] = say if out is not None else _to_stderr
    with _privacy() as privacy:
        try:
            export = privacy.requests.access(who, reference=reference)
        except RequestFailed as failed:
            _failed(failed)
    request = export.request
    if not export.document:
        line(f"privacy request {request.request_id}: {request.outcome}")
        raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))
    text = json.dumps(export.document, indent=2, ensure_ascii=False)
    if out is not None:
        _write_owner_only(out, text + "\n")
    line(f"privacy request {request.request_id}: access to {_whom(request)}")
    for name, count in export.counts.items():
        line(f"  {name}: {NOT_AVAILABLE if count is None else count}")
    if out is None:
        print(text)
    else:
        line(f"written to {out} (owner-only)")


@privacy_app.command("delete")
def delete(
    member: Member = None,
    email: Email = None,
    ct_user_id: CtUserId = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the deletion until CrowdTwist completes it")] = False,
    reference: Reference = None,
) -> None:
    """Ask CrowdTwist to delete a member; the sync never sends the member again."""
    from sync_worker.core.privacy import NOT_FOUND, REFUSED, RequestFailed

    command = "ct-sync privacy delete"
    who = _identity(command, member, email, ct_user_id)
    settings = settings_or_exit()
    with _privacy(settings) as privacy:
        try:
            request = privacy.requests.delete(who, reference=reference)
        except RequestFailed as failed:
            _failed(failed)
        if request.status in (NOT_FOUND, REFUSED):
            verb = "CrowdTwist refused the deletion" if request.status == REFUSED else "not deleted"
            say(f"privacy request {request.request_id}: {verb} of {_whom(request)}: {request.outcome}")
            raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))
        say(f"privacy request {request.request_id}: deletion of {_whom(request)}: {request.status}")
        if wait:
            interval = settings.privacy.poll_interval.total_seconds()
            request = or_exit(
                lambda: privacy.requests.wait(request, interval=interval, sleep=time.sleep, progress=_print_status)
            )
        else:
            say(f"follow it with: ct-sync privacy status {request.request_id}")


@privacy_app.command("status")
def status(
    request_id: Annotated[str | None, typer.Argument(help="a request id (PR-N); none: every open deletion")] = None,
    as_json: AsJson = False,
) -> None:
    """Ask CrowdTwist where a deletion stands (one request, or every open one) and print it."""
    with _privacy() as privacy:
        if request_id is None:
            requests = or_exit(privacy.requests.follow_open)
        else:
            found = or_exit(lambda: privacy.register.get(request_id))
            if found is None:
                fail(ExitCode.MEMBER_PROBLEM, f"ct-sync privacy status: no privacy request {request_id}")
            requests = [or_exit(lambda: privacy.requests.follow(found))]
    if as_json:
        print_json([_document(request) for request in requests])
        return
    if not requests:
        say("no open privacy requests")
    for request in requests:
        _print_status(request)


@privacy_app.command("restore")
def restore(
    member: Annotated[str, typer.Option("--member", help="the Member Number deleted on a privacy request")],
    reference: Reference = None,
) -> None:
    """Let the sync send a member deleted on a privacy request again (it becomes a new member in CrowdTwist)."""
    with _privacy() as privacy:
        request = or_exit(lambda: privacy.requests.restore(member, reference=reference))
    if request is None:
        fail(ExitCode.MEMBER_PROBLEM, f"ct-sync privacy restore: member {member} is not deleted on a privacy request")
    say(f"privacy request {request.request_id}: member {member} may be synced again ({request.outcome})")
    say(f"queue it with: ct-sync resubmit --member {member}")


# -- shared ------------------------------------------------------------------------------------------------------


@contextmanager
def _privacy(settings: Settings | None = None) -> Iterator[Privacy]:
    """The wired privacy requests for one command, closed when it ends."""
    from sync_worker.bootstrap import build_privacy

    settings = settings or settings_or_exit()
    privacy = or_exit(lambda: build_privacy(settings))
    try:
        yield privacy
    finally:
        privacy.close()


def _identity(command: str, member: str | None, email: str | None, ct_user_id: str | None) -> Identity:
    from sync_worker.core.privacy import Identity

    given = [
        (kind, value) for kind, value in (("third_party_id", member), ("email", email), ("id", ct_user_id)) if value
    ]
    if len(given) != 1:
        fail(ExitCode.CONFIGURATION, f"{command}: say who, once: --member N, --email E or --ct-user-id ID")
    kind, value = given[0]
    if kind == "id" and not value.isdigit():
        fail(ExitCode.CONFIGURATION, f"{command}: --ct-user-id must be CrowdTwist's numeric id, not {value!r}")
    return Identity(kind, value)  # type: ignore[arg-type]  # one of the three literals above


def _whom(request: PrivacyRequest) -> str:
    """Ids only: the member's email never reaches a line."""
    parts = [f"member {request.member_number}" if request.member_number else "the member"]
    if request.ct_user_id is not None:
        parts.append(f"(CrowdTwist user {request.ct_user_id})")
    return " ".join(parts)


def _print_status(request: PrivacyRequest) -> None:
    detail = f": {request.outcome}" if request.outcome else ""
    reference = f", reference {request.reference}" if request.reference else ""
    say(
        f"privacy request {request.request_id}: {request.kind} of {_whom(request)}{reference}: {request.status}{detail}"
    )


def _document(request: PrivacyRequest) -> dict[str, object]:
    return {
        "request_id": request.request_id, "kind": request.kind, "status": request.status,
        "member_number": request.member_number, "ct_user_id": request.ct_user_id, "reference": request.reference,
        "requested_at": request.requested_at.isoformat(), "updated_at": request.updated_at.isoformat(),
        "outcome": request.outcome,
    }  # fmt: skip


def _failed(failed: RequestFailed) -> NoReturn:
    from sync_worker.core.errors import ConfigurationError, NotAuthorized, TransientError, says_outage

    cause = failed.cause
    if isinstance(cause, NotAuthorized | ConfigurationError):
        fail(ExitCode.CONFIGURATION, f"{failed}")
    if isinstance(cause, TransientError):
        outage = cause.message if says_outage(cause.message) else f"CrowdTwist unreachable: {cause.message}"
        fail(ExitCode.UNREACHABLE, f"privacy request {failed.request.request_id}: {outage}")
    fail(ExitCode.MEMBER_PROBLEM, f"{failed}")


def _to_stderr(line: str) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _write_owner_only(path: Path, text: str) -> None:
    """Created 0600 from the first byte (never chmod after writing: the data would be readable meanwhile)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
