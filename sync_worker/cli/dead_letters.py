"""The dead-letter commands: `ct-sync dead-letters list|replay|discard`.

A dead letter is a message the worker could never process, kept with its reason. `list` reads without taking
anything off the queue and shows each letter's content safely (control characters escaped, long bodies cut, no
markup interpreted); `replay` turns letters that name a member into fresh events for that member; `discard` drops
letters for good. Replays and discards are recorded in the ledger with the operator's name (`--operator`, by
default the login name). Exit codes: 0 done, 1 an id that is not on the queue or a letter naming no member (left),
75 the broker or ledger unreachable.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sync_worker.cli.app import ExitCode, app, fail, or_exit, out_console, settings_or_exit
from sync_worker.core.dead_letters import BODY_PREVIEW_CHARS, HEADER_PREVIEW_CHARS, shown_safely

if TYPE_CHECKING:
    from config import Settings
    from sync_worker.core.dead_letters import DeadLetter, LetterResult
    from sync_worker.ledger.operations import ActionKind

dead_letters_app = typer.Typer(
    no_args_is_help=True, help="Messages the worker could never process: list, replay, discard."
)
app.add_typer(dead_letters_app, name="dead-letters", rich_help_panel="Dead letters")
Operator = Annotated[str | None, typer.Option(help="who does this, for the ledger (default: your login name)")]
LetterIds = Annotated[list[str] | None, typer.Argument(help="dead-letter ids, as `dead-letters list` shows them")]


@dead_letters_app.command("list")
def list_letters(
    limit: Annotated[int, typer.Option(min=1, help="show at most this many, oldest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
) -> None:
    """Show the dead letters, oldest first, with their reasons, headers and bodies (escaped and cut)."""
    from sync_worker.bootstrap import build_dead_letters

    queue = build_dead_letters(settings_or_exit())
    total = or_exit(queue.count)
    letters = or_exit(lambda: queue.peek(limit=limit))
    if as_json:
        print(json.dumps({"count": total, "letters": [_letter_json(letter) for letter in letters]}, indent=2))
        return
    for letter in letters:
        out_console.print(_letter_text(letter), markup=False, highlight=False, soft_wrap=True)
    shown = f"{len(letters)} of {total}" if total > len(letters) else str(total)
    out_console.print(f"{shown} dead letter(s)")


@dead_letters_app.command("replay")
def replay(
    letter_ids: LetterIds = None,
    every: Annotated[bool, typer.Option("--all", help="every letter that names a member")] = False,
    operator: Operator = None,
) -> None:
    """Queue the members named by these dead letters again (fresh events) and take the letters off the queue."""
    from sync_worker.bootstrap import build_dead_letters, build_publisher

    if bool(letter_ids) == every:
        fail(ExitCode.CONFIGURATION, "ct-sync dead-letters replay: name the letters (their ids) or say --all")
    settings = settings_or_exit()
    publisher = build_publisher(settings)
    try:
        result = or_exit(lambda: build_dead_letters(settings).replay(None if every else letter_ids, publisher))
    finally:
        publisher.close()
    for letter in result.done:
        out_console.print(f"replayed {letter.letter_id}: queued {letter.member_number}", markup=False)
    for letter in result.left:
        out_console.print(f"left {letter.letter_id}: it names no member (discard it)", markup=False)
    _record(settings, "replay", result, operator)
    _finish("replayed", result)


@dead_letters_app.command("discard")
def discard(letter_ids: LetterIds = None, operator: Operator = None) -> None:
    """Take these dead letters off the queue for good."""
    from sync_worker.bootstrap import build_dead_letters

    if not letter_ids:
        fail(ExitCode.CONFIGURATION, "ct-sync dead-letters discard: name the letters (their ids)")
    settings = settings_or_exit()
    result = or_exit(lambda: build_dead_letters(settings).discard(letter_ids))
    for letter in result.done:
        out_console.print(f"discarded {letter.letter_id} ({letter.member_number or 'no member'})", markup=False)
    _record(settings, "discard", result, operator)
    _finish("discarded", result)


def _record(settings: Settings, action: ActionKind, result: LetterResult, operator: str | None) -> None:
    from sync_worker.bootstrap import build_operations_log
    from sync_worker.ledger.operations import Action

    at = datetime.now(UTC)
    who = operator or _login_name()
    log = or_exit(lambda: build_operations_log(settings))
    try:
        or_exit(
            lambda: log.record_actions(
                [
                    Action(
                        operator=who, origin="cli", action=action, at=at, member_number=letter.member_number,
                        letter_id=letter.letter_id, detail=letter.reason[:500],
                    )
                    for letter in result.done
                ]
            )
        )  # fmt: skip
    finally:
        log.close()


def _finish(verb: str, result: LetterResult) -> None:
    for letter_id in result.missing:
        out_console.print(f"no dead letter {letter_id} (gone, or in another operator's hands right now)", markup=False)
    out_console.print(f"{len(result.done)} dead letter(s) {verb}")
    if result.missing or result.left:
        raise typer.Exit(int(ExitCode.MEMBER_PROBLEM))


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a container's numeric user)
        return "unknown"


def _safe(value: bytes | str, limit: int = HEADER_PREVIEW_CHARS) -> str:
    return str(shown_safely(value, limit=limit))


def _letter_text(letter: DeadLetter) -> str:
    return "\n".join(
        [
            f"── {letter.letter_id}  member {_safe(letter.member_number or '(none)')}  dead {_time(letter.dead_at)}",
            f"reason: {_safe(letter.reason)}",
            *(f"header {_safe(name, 100)}: {_safe(value)}" for name, value in sorted(letter.headers.items())),
            f"body ({len(letter.body)} bytes, {_safe(letter.content_type or 'no content type')}):",
            _safe(letter.body, BODY_PREVIEW_CHARS),
        ]
    )


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    body = shown_safely(letter.body)
    return {
        "id": letter.letter_id,
        "member_number": letter.member_number,
        "reason": _safe(letter.reason),
        "dead_at": letter.dead_at.isoformat() if letter.dead_at else None,
        "headers": {_safe(name, 100): _safe(value) for name, value in letter.headers.items()},
        "content_type": letter.content_type,
        "body_bytes": len(letter.body),
        "body": body.text,
        "body_cut_characters": body.cut,
    }


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "(unknown)"
