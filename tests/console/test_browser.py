"""The console in a real browser (Playwright driving Debian's Chromium) against a real worker and the CrowdTwist
sandbox: what an administrator does with it, a forged cross-site form, hostile member data. The screenshots taken
on the way are kept in docs/console/ for the README."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kombu.connection import Connection
from playwright.sync_api import Browser, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sync_worker.core.ports import RunResult
from sync_worker.http import BackgroundServer
from sync_worker.queue.broker import open_broker
from sync_worker.queue.topology import QueueTopology
from tests.console.conftest import TAKEN_EMAIL, TOKEN, World
from tests.integration.helpers import eventually
from tests.unavailable import unavailable

CHROMIUM = Path("/usr/bin/chromium")
# As root on a closed network: no sandbox, no GPU, and none of Chromium's own calls home.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
PHONE = {"width": 390, "height": 844}
HOSTILE_FIRST = "<script>window.pwned = 1</script>"
HOSTILE_LAST = "<img src=x onerror=window.pwned=2>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (scripts/ensure-services installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, world: World, name: str = "Ada Admin") -> None:
    page.goto(world.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Console token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def dead_letter_through_the_worker(world: World, body: bytes) -> None:
    """Put a message the worker cannot read on the work queue: the worker dead-letters it, as in production."""
    topology = QueueTopology.from_settings(world.settings.broker)
    connection: Connection = open_broker(world.settings)
    with connection:
        topology.declare(connection)
        connection.Producer(exchange=topology.exchange).publish(
            body, routing_key=topology.work_queue.routing_key, content_type="application/json",
            content_encoding="utf-8", delivery_mode=2,
        )  # fmt: skip


def test_an_operator_logs_in_sees_a_data_error_resubmits_the_fixed_member_and_watches_it_become_synced(
    page: Page, world: World
) -> None:
    world.add_member("296-1")
    world.add_member("296-2", **{"Email Address": TAKEN_EMAIL})
    world.start_worker()
    world.publish("296-1", "296-2")
    eventually(lambda: world.status_of("296-1") == "Synced" and world.status_of("296-2") == "Data Error", timeout=60)

    page.goto(world.url + "/")
    shot(page, "login")
    log_in(page, world)
    expect(page.locator("table.counts tr", has_text="Data Error").first).to_contain_text("1")
    expect(page.locator(".breaker")).to_have_text("closed")  # the worker's breaker, learnt from the ledger
    shot(page, "overview")

    page.get_by_role("link", name="Failures", exact=True).click()
    expect(page.get_by_role("cell", name="Email Address is already taken")).to_be_visible()
    shot(page, "failures")
    page.get_by_role("link", name="296-2").first.click()
    expect(page.get_by_role("heading", name="Member 296-2")).to_be_visible()
    expect(page.locator("#sync-status")).to_have_text("Data Error")
    shot(page, "member")

    world.add_member("296-2", **{"Email Address": "jane.fixed@example.com"})  # the Siebel admin fixes the data
    page.get_by_role("link", name="Resubmit…").click()
    expect(page.get_by_role("heading", name="Resubmit member 296-2?")).to_be_visible()
    shot(page, "confirm-resubmit")
    page.get_by_role("button", name="Resubmit").click()
    expect(page.locator("#sync-status")).to_have_text("Synced", timeout=60_000)  # the page looks again until then
    expect(page.get_by_role("cell", name="Ada Admin")).to_be_visible()  # who did it, from the ledger
    assert world.status_of("296-2") == "Synced"


def test_a_forged_cross_site_post_is_refused_and_changes_nothing(page: Page, world: World) -> None:
    world.add_member("296-1")
    log_in(page, world)
    forged = (
        f'<form id="f" method="post" action="{world.url}/member/resubmit">'
        '<input name="number" value="296-1"></form><script>document.getElementById("f").submit()</script>'
    )

    def attack(_request: Request) -> HTMLResponse:
        return HTMLResponse(forged)

    # Another site: 127.0.0.2 is loopback too, but not the console's host.
    with BackgroundServer(Starlette(routes=[Route("/", attack)]), host="127.0.0.2") as evil:
        with page.expect_response(lambda response: response.url.endswith("/member/resubmit")) as answer:
            page.goto(evil.url + "/")
        assert answer.value.status == 403
        assert answer.value.request.method == "POST"
    assert world.backend.queue_depths()["work"] == 0
    assert world.backend.operations.actions() == []


def test_hostile_member_data_and_dead_letters_are_shown_as_text_and_never_run(page: Page, world: World) -> None:
    world.add_member("296-6", **{"First Name": HOSTILE_FIRST, "Last Name": HOSTILE_LAST})
    world.start_worker()
    world.publish("296-6")
    dead_letter_through_the_worker(
        world, b'{"schema_version": 1, "member_number": "<script>window.pwned = 3</script>"}'
    )
    eventually(lambda: world.status_of("296-6") == "Data Error" and world.backend.dead_letters.count() == 1, timeout=60)
    log_in(page, world)

    page.goto(world.url + "/member?number=296-6")
    expect(page.locator("pre.payload")).to_contain_text(HOSTILE_FIRST)
    expect(page.locator("pre.payload")).to_contain_text(HOSTILE_LAST)
    assert page.evaluate("window.pwned") is None
    assert page.locator("main script, main img").count() == 0

    page.get_by_role("link", name="Dead letters").click()
    letter = page.locator("article.letter-card")
    expect(letter).to_contain_text('"member_number": "<script>window.pwned = 3</script>"')
    expect(letter).to_contain_text("event does not match schema 1")
    assert page.evaluate("window.pwned") is None
    shot(page, "dead-letters")
    letter.get_by_role("link", name="Discard…").click()
    shot(page, "confirm-discard")
    page.get_by_role("button", name="Discard").click()
    expect(page.get_by_role("status")).to_have_text("1 dead letter(s) discarded.")
    assert world.backend.dead_letters.count() == 0
    assert [action.action for action in world.backend.operations.actions()] == ["discard"]


def test_the_pages_fit_a_phone_and_show_job_runs_with_their_log(page: Page, world: World) -> None:
    runs = world.backend.runs
    started = datetime.now(UTC) - timedelta(minutes=3)
    run_id = runs.start_run("nightly-gold", kind="segment-export", trigger="schedule", at=started)
    runs.log(run_id, "224,180 members read; 3,102 left out (never synced)", at=started + timedelta(seconds=40))
    runs.finish_run(
        run_id,
        RunResult("Success", counts={"rows": 221_078}, files=["Gold_20261122_0200.csv"]),
        at=started + timedelta(minutes=1),
    )
    world.add_member("296-8", **{"CT Sync Status": "CT Failure"})
    log_in(page, world)
    page.get_by_role("link", name="Job runs").click()
    page.get_by_role("link", name=run_id).click()
    expect(page.locator("pre.log")).to_contain_text("224,180 members read")
    shot(page, "job-run")
    page.goto(world.url + "/resubmit?status=CT+Failure")
    expect(page.locator("#would-queue")).to_have_text("1")
    shot(page, "resubmit-by-status")

    page.set_viewport_size(PHONE)
    for path in ("/", "/failures", "/jobs", "/member?number=296-8", "/dead-letters"):
        page.goto(world.url + path)
        # Nothing wider than the phone: wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    page.goto(world.url + "/")
    shot(page, "overview-phone")
