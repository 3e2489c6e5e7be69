"""The actions: resubmit one member, resubmit by status, replay or discard dead letters, log out.

Each action is two requests: a GET shows what would happen (for a resubmit by status, the dry-run count) with a
form to confirm it, and the POST does it (the guard has checked its CSRF token by then), records it in the ledger
with the operator's name, and sends the operator on with a message. A GET never changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from sync_worker.console.rendering import backend_of, flash, render
from sync_worker.console.security import Visit
from sync_worker.core.dead_letters import LetterResult
from sync_worker.core.member import FAILURE_STATUSES
from sync_worker.core.resubmit import Plan, plan_resubmit, publish_plan
from sync_worker.ledger.operations import Action, ActionKind

SHOWN_MEMBERS = 50
LOOK_AMONG = 1000  # dead letters read to find the one a confirmation page shows
_STATUS_NAMES = tuple(str(status) for status in FAILURE_STATUSES)
_LETTER_EFFECTS = {  # (action, every letter) → what happens
    ("replay", True): "Every dead letter that names a member becomes a fresh event for that member and leaves the "
    "queue; letters naming no member stay.",
    ("replay", False): "The letter becomes a fresh event for its member and leaves the queue.",
    ("discard", False): "The letter leaves the queue for good; its member is not queued again.",
}


def resubmit_member(visit: Visit) -> Response:
    backend = backend_of(visit)
    number = visit.param("number").strip()
    force = visit.param("force") == "1"
    plan = _plan(visit, members=[number], force=force)
    page = f"/member?number={quote(number, safe='')}"
    if visit.request.method == "GET":
        if plan.unknown:
            lines = [f"No member {number} in Siebel: nothing to resubmit."]
        else:
            lines = [
                f"Member {number} is queued again: the worker syncs its current Siebel state to CrowdTwist and "
                "writes the outcome back onto the member."
            ]
        for _candidate, count in plan.refused:
            lines.append(f"It was resubmitted {count} times already (the limit is {backend.max_resubmits}).")
        for _candidate, why in plan.deleted:
            lines.append(f"It is not resubmitted: {why} (ct-sync privacy restore re-enables it).")
        return render(
            visit,
            "confirm.html",
            title=f"Resubmit member {number}",
            lines=lines,
            action="/member/resubmit",
            fields={"number": number},
            force_choice=bool(plan.refused),
            can_confirm=not (plan.unknown or plan.deleted),
            button="Resubmit",
            cancel=page,
        )
    if refusal := _refusal(plan):
        flash(visit, f"Not resubmitted: {refusal}.")
        return RedirectResponse(page, status_code=303)
    queued_at = backend.clock()
    _publish(visit, plan, detail="one member")
    flash(visit, f"Member {number} queued again.")
    return RedirectResponse(f"{page}&queued={int(queued_at.timestamp())}", status_code=303)


def _refusal(plan: Plan) -> str | None:
    """Why the one member asked for is not queued, if it is not."""
    if plan.unknown:
        return "no such member in Siebel"
    if plan.deleted:
        return plan.deleted[0][1]
    return "past the resubmit limit" if plan.refused else None


def resubmit_by_status(visit: Visit) -> Response:
    """GET without statuses: the form. GET with them: the dry-run count and the confirm form. POST: queue them,
    unless more would be queued than the operator confirmed (the failures grew meanwhile): then confirm again."""
    statuses = [status for status in visit.params("status") if status in _STATUS_NAMES]
    since, until, problem = _window(visit.param("since"), visit.param("until"))
    force = visit.param("force") == "1"
    values: dict[str, Any] = {
        "statuses": statuses,
        "since": visit.param("since"),
        "until": visit.param("until"),
        "force": force,
    }
    if not statuses or problem:
        return render(visit, "resubmit.html", status_names=_STATUS_NAMES, plan=None, problem=problem, **values)
    plan = _plan(visit, statuses=statuses, since=since, until=until, force=force)
    expected = _int(visit.param("expected"))
    if visit.request.method == "GET" or expected is None or len(plan.queue) > expected:
        grew = visit.request.method == "POST" and len(plan.queue) > (expected or 0)
        return render(
            visit,
            "resubmit.html",
            status_names=_STATUS_NAMES,
            plan=plan,
            shown=plan.queue[:SHOWN_MEMBERS],
            grew=grew,
            problem=None,
            **values,
        )
    _publish(visit, plan, detail="by status: " + ", ".join(statuses))
    flash(
        visit,
        f"{len(plan.queue)} member(s) queued again; {len(plan.refused)} past the resubmit limit and "
        f"{len(plan.deleted)} deleted on a privacy request left out.",
    )
    return RedirectResponse("/failures", status_code=303)


def replay_letters(visit: Visit) -> Response:
    return _letters(visit, "replay")


def discard_letters(visit: Visit) -> Response:
    return _letters(visit, "discard")


def logout(visit: Visit) -> Response:
    visit.session.clear()
    return RedirectResponse("/login", status_code=303)


def _letters(visit: Visit, action: ActionKind) -> Response:
    backend = backend_of(visit)
    every = action == "replay" and visit.param("all") == "1"
    letter_id = visit.param("id")
    if not every and not letter_id:
        flash(visit, "Say which dead letter.")
        return RedirectResponse("/dead-letters", status_code=303)
    if visit.request.method == "GET":
        return _confirm_letters(visit, action, letter_id=None if every else letter_id)
    if action == "replay":
        result = backend.dead_letters.replay(None if every else [letter_id], backend.publisher)
    else:
        result = backend.dead_letters.discard([letter_id])
    _record_letters(visit, action, result)
    flash(visit, _letters_message(action, result))
    return RedirectResponse("/dead-letters", status_code=303)


def _confirm_letters(visit: Visit, action: ActionKind, *, letter_id: str | None) -> Response:
    """The confirmation: what will happen, and the letter itself (None: every letter)."""
    verb = "Replay" if action == "replay" else "Discard"
    letters = []
    if letter_id is not None:
        found = backend_of(visit).dead_letters.peek(limit=LOOK_AMONG)
        letters = [letter for letter in found if letter.letter_id == letter_id]
    missing = letter_id is not None and not letters
    return render(
        visit,
        "confirm.html",
        title=f"{verb} {'every dead letter' if letter_id is None else f'dead letter {letter_id}'}",
        lines=[f"No dead letter {letter_id} among the first {LOOK_AMONG} on the queue."]
        if missing
        else [_LETTER_EFFECTS[action, letter_id is None]],
        letters=letters,
        action=f"/dead-letters/{action}",
        fields={"all": "1"} if letter_id is None else {"id": letter_id},
        force_choice=False,
        can_confirm=not missing,
        button=verb,
        cancel="/dead-letters",
    )


def _plan(
    visit: Visit,
    *,
    members: Sequence[str] = (),
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    force: bool = False,
) -> Plan:
    backend = backend_of(visit)
    return plan_resubmit(
        store=backend.store,
        history=backend.ledger,
        members=members,
        statuses=statuses,
        since=since,
        until=until,
        max_resubmits=backend.max_resubmits,
        force=force,
        privacy=backend.privacy,
    )


def _publish(visit: Visit, plan: Plan, *, detail: str) -> None:
    backend = backend_of(visit)
    events = publish_plan(plan, backend.publisher, progress=lambda _count: None)
    at = backend.clock()
    backend.operations.record_actions(
        [
            Action(
                operator=visit.operator, origin=visit.origin, action="resubmit", at=at,
                member_number=event.member_number, detail=f"{detail}; event {event.event_id}",
            )
            for event in events
        ]
    )  # fmt: skip


def _record_letters(visit: Visit, action: ActionKind, result: LetterResult) -> None:
    backend = backend_of(visit)
    at = backend.clock()
    backend.operations.record_actions(
        [
            Action(
                operator=visit.operator, origin=visit.origin, action=action, at=at,
                member_number=letter.member_number, letter_id=letter.letter_id, detail=letter.reason[:500],
            )
            for letter in result.done
        ]
    )  # fmt: skip


def _letters_message(action: ActionKind, result: LetterResult) -> str:
    verb = "replayed" if action == "replay" else "discarded"
    parts = [f"{len(result.done)} dead letter(s) {verb}."]
    if result.left:
        parts.append(f"{len(result.left)} name no member and stay (discard them).")
    if result.missing:
        parts.append(f"Not on the queue (any more): {', '.join(result.missing)}.")
    return " ".join(parts)


def _window(since: str, until: str) -> tuple[datetime | None, datetime | None, str | None]:
    """The form's times, read as UTC; or the problem with them."""
    moments: list[datetime | None] = []
    for name, text in (("since", since), ("until", until)):
        if not text.strip():
            moments.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            return None, None, f"{name}: {text!r} is not a time like 2026-11-22T10:00"
        moments.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return moments[0], moments[1], None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
