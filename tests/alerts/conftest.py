"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.sessions: list[tuple[bool, bool]] = []  # per message: (over TLS, logged in)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        return "250 OK"

    @property
    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int, *, tls: ssl.SSLContext | None = None, password: str | None = None) -> None:
        self.port = port
        self.inbox = Inbox()
        options: dict[str, Any] = {}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if password is not None:
            options.update(
                # handled=False: a refused login is answered 535, as real servers do (aiosmtpd's default,
                # handled=True, answers nothing and leaves the client waiting).
                authenticator=lambda server, session, envelope, mechanism, data: AuthResult(
                    success=isinstance(data, LoginPassword) and data.password == password.encode(), handled=False
                ),
                auth_require_tls=tls is not None,
                auth_required=True,  # no mail without a login (530), as a relay that asks for one
            )
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=port, **options)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def starttls_smtp(
    certificate_authority: trustme.CA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[SmtpServer]:
    """A server that requires STARTTLS and a login (password `smtp-pw-123`), its certificate from a test CA the
    client trusts through SSL_CERT_FILE, as a private CA would be."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server = SmtpServer(free_port(), tls=server_context, password="smtp-pw-123").start()
    yield server
    server.stop()
