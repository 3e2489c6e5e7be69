"""Who may use the console, over real HTTP: the login, the session cookie's flags, bearer tokens for scripts, CSRF
on every action, and the confirmation a resubmit by status needs."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from sync_worker.bootstrap import build_privacy_register
from sync_worker.cli import app
from tests.console.conftest import TOKEN, World

HTML = {"Accept": "text/html"}


@contextmanager
def logged_in(world: World, name: str = "Ada Admin") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, headers=HTML) as client:
        form = client.get("/login")
        response = client.post(
            "/login", data={"csrf_token": csrf(form.text), "operator": name, "token": TOKEN, "next": "/"}
        )
        assert response.status_code == 303, response.text
        yield client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_pages_send_a_browser_to_the_login_page_and_other_requests_get_401(world: World) -> None:
    with httpx.Client(base_url=world.url) as client:
        page = client.get("/failures?status=Data+Error", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Ffailures%3Fstatus%3DData%2BError"
        assert client.get("/failures").status_code == 401  # a script, not a browser
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_script_reads_pages_with_the_bearer_token(world: World) -> None:
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "Members by current state" in page.text


def test_a_wrong_token_is_refused_at_login_and_the_cookie_is_httponly_strict_and_not_secure_over_plain_http(
    world: World,
) -> None:
    with httpx.Client(base_url=world.url, headers=HTML) as client:
        form = client.get("/login")
        refused = client.post("/login", data={"csrf_token": csrf(form.text), "operator": "Eve", "token": "guess"})
        assert refused.status_code == 401
        assert "not the console's token" in html.unescape(refused.text)
        accepted = client.post("/login", data={"csrf_token": csrf(refused.text), "operator": "Ada", "token": TOKEN})
    cookie = accepted.headers["set-cookie"].lower()
    assert accepted.status_code == 303
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie


def test_the_session_cookie_is_secure_when_a_tls_proxy_sent_the_request(world: World) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (FORWARDED_ALLOW_IPS): the proxy terminated TLS.
    with httpx.Client(base_url=world.url, headers={**HTML, "X-Forwarded-Proto": "https"}) as client:
        form = client.get("/login")
    assert "secure" in form.headers["set-cookie"].lower()


def test_an_action_with_the_session_cookie_but_without_the_forms_token_gets_403_and_queues_nothing(
    world: World,
) -> None:
    world.add_member("296-1")
    with logged_in(world) as client:
        refused = client.post("/member/resubmit", data={"number": "296-1"})
        assert refused.status_code == 403
        assert client.get("/").status_code == 200  # still logged in: only that request was refused
    assert world.backend.dead_letters.count() == 0
    assert world.backend.queue_depths()["work"] == 0
    assert world.backend.operations.actions() == []


def test_resubmit_by_status_counts_first_and_queues_no_more_than_the_operator_confirmed(world: World) -> None:
    for number in ("296-1", "296-2"):
        world.add_member(number, **{"CT Sync Status": "CT Failure"})
    with logged_in(world, "Grace") as client:
        dry_run = client.get("/resubmit", params={"status": "CT Failure"})
        assert re.search(r'id="would-queue">2<', dry_run.text)
        assert world.backend.queue_depths()["work"] == 0  # counting queued nothing
        world.add_member("296-3", **{"CT Sync Status": "CT Failure"})  # a failure more since the count
        form = {"csrf_token": csrf(dry_run.text), "status": "CT Failure", "since": "", "until": ""}
        grew = client.post("/resubmit", data={**form, "expected": "2"})
        assert "More members match now than when you looked" in grew.text
        assert world.backend.queue_depths()["work"] == 0
        done = client.post("/resubmit", data={**form, "expected": "3"})
        assert done.status_code == 303
    assert world.backend.queue_depths()["work"] == 3
    actions = world.backend.operations.actions()
    assert sorted(action.member_number or "" for action in actions) == ["296-1", "296-2", "296-3"]
    assert {(action.operator, action.origin, action.action) for action in actions} == {("Grace", "console", "resubmit")}


def test_the_console_refuses_to_bind_beyond_loopback_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CONSOLE__HOST", "0.0.0.0")
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert "CTSYNC_CONSOLE__TOKEN: is required when binding beyond loopback (host is 0.0.0.0)" in result.output


def test_an_empty_console_token_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CONSOLE__TOKEN", "  ")
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert "CTSYNC_CONSOLE__TOKEN: is empty" in result.output


def test_a_member_deleted_on_a_privacy_request_is_not_resubmitted_from_the_console(world: World) -> None:
    world.add_member("296-7", **{"CT Sync Status": "CT Failure"})
    world.add_member("296-8", **{"CT Sync Status": "CT Failure"})
    register = build_privacy_register(world.settings)
    try:
        request = register.open_request("delete", at=datetime.now(UTC), reference="TICKET-9", member_number="296-7")
    finally:
        register.close()
    with logged_in(world) as client:
        confirm = client.get("/member/resubmit", params={"number": "296-7"})
        assert f"deleted in CrowdTwist on privacy request {request.request_id}" in html.unescape(confirm.text)
        refused = client.post("/member/resubmit", data={"csrf_token": csrf(confirm.text), "number": "296-7"})
        assert refused.status_code == 303
        dry_run = client.get("/resubmit", params={"status": "CT Failure"})
        assert re.search(r'id="would-queue">1<', dry_run.text)  # 296-8 only
        assert "1 deleted on a privacy" in " ".join(dry_run.text.split())
    assert world.backend.queue_depths()["work"] == 0
    assert world.backend.operations.actions() == []
