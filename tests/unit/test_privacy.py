"""The privacy use case on a fake register and fake clock, with CrowdTwist the sandbox in process (its clock moved
by the test): access exports, deletions followed to completion, refusals, failures, restore."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from crowdtwist_client.client import CrowdTwistClient
from sandbox.crowdtwist import SandboxState
from sandbox.crowdtwist.server import SandboxTransport
from sync_worker.core.ct_user import DeletionTicket, UserPayload
from sync_worker.core.errors import TransientError
from sync_worker.core.privacy import (
    NOT_AVAILABLE,
    Identity,
    PrivacyRequests,
    RequestFailed,
    deleted_text,
)
from tests.fakes import FakeClock, FakePrivacyRegister

API_KEY = "unit-privacy-key-0123456789"
ANN = UserPayload(
    third_party_id="296-1", first_name="Annabel", last_name="Leeward", email_address="annabel@example.com"
)
BY_MEMBER = Identity("third_party_id", "296-1")


@dataclass
class World:
    state: SandboxState
    crowdtwist: CrowdTwistClient
    register: FakePrivacyRegister
    requests: PrivacyRequests

    def ann(self) -> int:
        return self.crowdtwist.create_user(ANN).id


@pytest.fixture
def world() -> Iterator[World]:
    state = SandboxState(api_key=API_KEY)
    crowdtwist = CrowdTwistClient(
        base_url="https://sb-api306.crowdtwist.com", api_key=API_KEY, transport=SandboxTransport(state),
        retry_attempts=2, sleep=lambda seconds: None,
    )  # fmt: skip
    register = FakePrivacyRegister()
    with crowdtwist:
        yield World(
            state, crowdtwist, register, PrivacyRequests(crowdtwist=crowdtwist, register=register, clock=FakeClock())
        )


def test_an_access_export_holds_the_profile_and_every_item_of_every_source(world: World) -> None:
    user_id = world.ann()
    world.state.add_list_items(user_id, "activity_history", [{"n": n} for n in range(30)])
    world.state.add_list_items(user_id, "purchases", [{"sku": "A"}])
    export = world.requests.access(Identity("email", "annabel@example.com"), reference="T-1")
    assert export.document["profile"]["email_address"] == "annabel@example.com"
    assert len(export.document["activity_history"]) == 30
    assert export.document["purchases"] == [{"sku": "A"}]
    assert export.counts == {
        "profile": 1, "activities": 0, "activity_history": 30, "rewards": 0, "redemption_history": 0,
        "purchases": 1, "receipts": 0,
    }  # fmt: skip
    request = export.request
    assert (request.kind, request.status, request.member_number, request.ct_user_id) == (
        "access",
        "Done",
        "296-1",
        user_id,
    )
    assert request.reference == "T-1"


def test_the_register_holds_counts_and_ids_never_the_exported_data(world: World) -> None:
    world.ann()
    world.requests.access(Identity("email", "annabel@example.com"))
    recorded = repr(world.register.requests)
    assert "annabel" not in recorded.lower()
    assert "Leeward" not in recorded


def test_a_source_whose_endpoint_is_not_served_is_named_not_available(world: World) -> None:
    world.ann()
    with CrowdTwistClient(
        base_url="https://sb-api306.crowdtwist.com", pos_base_url="https://sb-api306.crowdtwist.com/not-here",
        api_key=API_KEY, transport=SandboxTransport(world.state),
    ) as crowdtwist:  # fmt: skip
        export = PrivacyRequests(crowdtwist=crowdtwist, register=world.register, clock=FakeClock()).access(BY_MEMBER)
    assert export.document["purchases"] == NOT_AVAILABLE
    assert export.document["not_available"] == ["purchases"]
    assert export.counts["purchases"] is None
    assert export.request.outcome is not None
    assert "purchases not available" in export.request.outcome


def test_an_unknown_member_is_a_request_not_found(world: World) -> None:
    export = world.requests.access(Identity("third_party_id", "296-404"))
    assert (export.request.status, export.document) == ("Not found", {})


def test_a_deletion_is_recorded_and_blocks_the_member_before_crowdtwist_is_asked(world: World) -> None:
    world.ann()
    blocked_when_asked: list[str | None] = []
    delete_user = world.crowdtwist.delete_user

    def recording_delete(value: str | int, *, id_type: str = "third_party_id") -> DeletionTicket | None:
        blocked_when_asked.append(world.register.deletion_request("296-1"))
        return delete_user(value, id_type=id_type)

    world.crowdtwist.delete_user = recording_delete  # type: ignore[method-assign]
    request = world.requests.delete(Identity("email", "annabel@example.com"), reference="T-2")
    assert blocked_when_asked == [request.request_id]
    assert (request.status, request.member_number) == ("Queued", "296-1")


def test_a_deletion_is_followed_to_completion_on_a_fake_clock(world: World) -> None:
    user_id = world.ann()
    request = world.requests.delete(BY_MEMBER)
    seen: list[str] = []
    done = world.requests.wait(
        request, interval=30, sleep=world.state.advance, progress=lambda followed: seen.append(followed.status)
    )
    assert seen == ["Deletion_initiated", "Deletion_in_progress", "Deletion_completed"]
    assert (done.status, done.ct_user_id, done.settled) == ("Deletion_completed", user_id, True)
    assert world.crowdtwist.user_document(user_id) is None
    assert world.register.deletion_request("296-1") == request.request_id  # completed: still never synced again
    assert world.requests.follow_open() == []


def test_crowdtwists_refusal_is_kept_verbatim_and_releases_the_member(world: World) -> None:
    user_id = world.ann()
    with httpx.Client(base_url="https://sb-api306.crowdtwist.com", transport=SandboxTransport(world.state)) as http:
        credit = {"activity_id": "a", "num_points": 50}
        http.post(f"/v2/users/{user_id}/activities", params={"api_key": API_KEY}, json=credit).raise_for_status()
    world.crowdtwist.update_user("296-1", UserPayload(is_active=0))  # inactive, with redeemable points
    request = world.requests.delete(BY_MEMBER)
    assert (request.status, request.outcome) == ("Refused", "Member is inactive but has redeemable points")
    assert world.register.deletion_request("296-1") is None


def test_an_unreachable_crowdtwist_fails_the_request_and_names_it(world: World) -> None:
    world.ann()
    world.state.set_faults(down=True)
    with pytest.raises(RequestFailed) as failed:
        world.requests.delete(BY_MEMBER)
    assert isinstance(failed.value.cause, TransientError)
    assert failed.value.request.status == "Failed"
    assert world.register.deletion_request("296-1") is None  # never reached CrowdTwist: nothing deleted


def test_a_delete_whose_outcome_is_unknown_keeps_blocking_the_member(world: World) -> None:
    world.ann()

    def timed_out(value: Any, *, id_type: str = "") -> DeletionTicket | None:
        raise TransientError("read timeout", system="crowdtwist", outcome_unknown=True)

    world.crowdtwist.delete_user = timed_out  # type: ignore[method-assign]
    with pytest.raises(RequestFailed) as failed:
        world.requests.delete(BY_MEMBER)
    assert failed.value.request.status == "Unconfirmed"
    assert world.register.deletion_request("296-1") == failed.value.request.request_id


def test_restore_releases_the_member_and_is_recorded(world: World) -> None:
    world.ann()
    deletion = world.requests.delete(BY_MEMBER)
    restored = world.requests.restore("296-1", reference="T-3")
    assert restored is not None
    assert (restored.kind, restored.status, restored.reference) == ("restore", "Done", "T-3")
    assert deletion.request_id in (restored.outcome or "")
    assert world.register.deletion_request("296-1") is None
    assert world.requests.restore("296-1") is None  # nothing left to restore


def test_the_data_error_names_the_request() -> None:
    assert deleted_text("PR-7") == "deleted in CrowdTwist on privacy request PR-7"


def test_no_log_line_carries_the_key_or_the_exported_data(world: World) -> None:
    user_id = world.ann()
    world.state.add_list_items(user_id, "rewards", [{"title": "Secret reward of Annabel"}])
    world.state.set_faults(error_rate=0.5)  # retries, each a log line
    # The faults may outlast the retries: either way, nothing leaks.
    with capture_logs() as logs, contextlib.suppress(RequestFailed):
        world.requests.access(BY_MEMBER)
    text = repr(logs)
    assert API_KEY not in text
    assert "annabel" not in text.lower()
