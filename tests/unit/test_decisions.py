"""The retry decision as a table: (error, attempts, age) → ack / retry later / dead-letter, and which status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_worker.core.decisions import RetryPolicy, decide_failure, decide_unavailable, is_unavailable, retry_delay
from sync_worker.core.errors import (
    INTERNAL,
    ConfigurationError,
    CtSyncError,
    InvalidEvent,
    NotAuthorized,
    PermanentError,
    RateLimited,
    TransientError,
)
from sync_worker.core.messages import MemberEvent
from tests.builders import at

NOW = at("2026-11-22T10:00:00")
POLICY = RetryPolicy(budget=timedelta(minutes=10))
UNAVAILABLE = TransientError("HTTP 503", system="crowdtwist", status_code=503)
SIEBEL_REFUSES = PermanentError(
    "Siebel refused the request (HTTP 400): value too long", system="siebel", status_code=400
)


def _event(attempt: int = 1, failed_minutes_ago: float | None = None, siebel_refusals: int = 0) -> MemberEvent:
    first = None if failed_minutes_ago is None else NOW - timedelta(minutes=failed_minutes_ago)
    return MemberEvent(
        event_type="update",
        member_number="296-1",
        attempt=attempt,
        first_failure_at=first,
        siebel_refusals=siebel_refusals,
    )


@pytest.mark.parametrize(
    ("error", "event", "action", "outcome", "status"),
    [
        (UNAVAILABLE, _event(1), "retry_later", "Retrying", None),
        (UNAVAILABLE, _event(4, failed_minutes_ago=5), "retry_later", "Retrying", None),
        (UNAVAILABLE, _event(6, failed_minutes_ago=10), "ack", "CT Failure", "CT Failure"),
        (RateLimited("429", system="crowdtwist"), _event(2, failed_minutes_ago=1), "retry_later", "Retrying", None),
        (NotAuthorized("HTTP 401", system="crowdtwist", status_code=401), _event(1), "retry_later", "Retrying", None),
        (
            NotAuthorized("refused", system="crowdtwist", status_code=403),
            _event(9, failed_minutes_ago=11),
            "ack",
            "CT Failure",
            "CT Failure",
        ),
        (TransientError("down", system="siebel"), _event(50, failed_minutes_ago=600), "retry_later", "Retrying", None),
        (InvalidEvent("body is not JSON"), _event(1), "dead_letter", "Dead-lettered", None),
        # Siebel refuses (a field too long, a validation rule): a few tries, then the dead-letter queue.
        (SIEBEL_REFUSES, _event(7, failed_minutes_ago=11), "retry_later", "Retrying", None),
        (SIEBEL_REFUSES, _event(9, siebel_refusals=2), "dead_letter", "Dead-lettered", None),
        (
            ConfigurationError("credentials refused", system="siebel"),
            _event(3, siebel_refusals=2),
            "dead_letter",
            "Dead-lettered",
            None,
        ),
        # CrowdTwist refuses the request itself (not the data, not an outage): CT Failure at once, no budget spent.
        (
            PermanentError("HTTP 405: not allowed", system="crowdtwist", status_code=405),
            _event(1),
            "ack",
            "CT Failure",
            "CT Failure",
        ),
        # A bug in ct-sync is nobody else's fault.
        (
            CtSyncError("internal error: KeyError at sync.py:99", system=INTERNAL),
            _event(1),
            "dead_letter",
            "Dead-lettered",
            None,
        ),
    ],
)
def test_decision_table(error: CtSyncError, event: MemberEvent, action: str, outcome: str, status: str | None) -> None:
    decision = decide_failure(error, event=event, now=NOW, policy=POLICY, jitter=0.5)
    assert (decision.action, decision.ledger_outcome, decision.write_status) == (action, outcome, status)


def test_a_retry_carries_the_next_attempt_and_the_first_failure_time() -> None:
    decision = decide_failure(UNAVAILABLE, event=_event(1), now=NOW, policy=POLICY, jitter=0.0)
    assert decision.retry_event is not None
    assert decision.retry_event.attempt == 2
    assert decision.retry_event.first_failure_at == NOW


def test_the_budget_end_is_written_as_a_short_human_cause() -> None:
    decision = decide_failure(UNAVAILABLE, event=_event(6, failed_minutes_ago=10), now=NOW, policy=POLICY, jitter=0)
    assert decision.reason == "CrowdTwist unreachable after 6 attempts over 10m: HTTP 503"


def test_refused_credentials_say_so_at_the_budget_end() -> None:
    error = NotAuthorized("API key refused", system="crowdtwist", status_code=401)
    decision = decide_failure(error, event=_event(3, failed_minutes_ago=12), now=NOW, policy=POLICY, jitter=0)
    assert decision.reason == "CrowdTwist refused our credentials after 3 attempts over 12m: HTTP 401: API key refused"


def test_the_last_retry_lands_at_the_end_of_the_budget_not_past_it() -> None:
    decision = decide_failure(UNAVAILABLE, event=_event(8, failed_minutes_ago=9.5), now=NOW, policy=POLICY, jitter=1)
    assert decision.delay == timedelta(seconds=30)


def test_siebel_outages_retry_steadily_without_spending_the_budget() -> None:
    decision = decide_failure(
        TransientError("down", system="siebel"),
        event=_event(3, failed_minutes_ago=60),
        now=NOW,
        policy=POLICY,
        jitter=0,
    )
    assert decision.delay == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 7.5, 15), (2, 15, 30), (3, 30, 60), (5, 120, 240), (6, 150, 300), (40, 150, 300)]
)
def test_retry_delays_grow_and_are_capped(attempt: int, low: float, high: float) -> None:
    assert retry_delay(attempt, policy=POLICY, jitter=0).total_seconds() == low
    assert retry_delay(attempt, policy=POLICY, jitter=1).total_seconds() == high


def test_a_crowdtwist_refusal_says_crowdtwist_refused_not_unreachable() -> None:
    error = PermanentError("HTTP 405: Method Not Allowed", system="crowdtwist", status_code=405)
    decision = decide_failure(error, event=_event(1), now=NOW, policy=POLICY, jitter=0)
    assert decision.reason == "CrowdTwist refused the request: HTTP 405: Method Not Allowed"


def test_another_system_past_the_budget_is_named_for_itself() -> None:
    error = TransientError("ledger unavailable: locked", system="ledger")
    decision = decide_failure(error, event=_event(6, failed_minutes_ago=11), now=NOW, policy=POLICY, jitter=0)
    assert decision.reason is not None
    assert decision.reason.startswith("ledger unreachable after 6 attempts")


LEDGER_DOWN = TransientError("member locks unavailable: connection refused", system="ledger")


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (LEDGER_DOWN, True),
        (TransientError("Siebel unavailable: HTTP 503", system="siebel", status_code=503), True),
        (UNAVAILABLE, False),  # CrowdTwist's outage is the breaker's
        (SIEBEL_REFUSES, False),  # a refusal is no outage
        (None, False),
    ],
)
def test_an_outage_of_the_ledger_or_siebel_is_told_apart(error: CtSyncError | None, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable


def test_a_member_the_ledger_held_up_before_any_call_is_retried_as_the_very_same_event() -> None:
    """Nothing reached CrowdTwist: the retry keeps the event's trust in the ledger, and spends no budget."""
    event = _event(1)
    decision = decide_unavailable(LEDGER_DOWN, event=event, policy=POLICY, trusted=True)
    assert (decision.action, decision.ledger_outcome, decision.write_status) == ("retry_later", "Retrying", None)
    assert decision.retry_event == event
    assert decision.delay == timedelta(seconds=30)
    assert decision.reason == "ledger unavailable: member locks unavailable: connection refused"


def test_a_redelivery_held_up_by_the_ledger_is_retried_as_a_later_attempt_that_trusts_nothing() -> None:
    """Its earlier delivery may have reached CrowdTwist: the retry must not trust the ledger's "unchanged"."""
    decision = decide_unavailable(LEDGER_DOWN, event=_event(1), policy=POLICY, trusted=False)
    assert decision.retry_event is not None
    assert (decision.retry_event.attempt, decision.retry_event.first_failure_at) == (2, None)
