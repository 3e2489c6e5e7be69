"""Adapter: opening the broker. RabbitMQ with heartbeats and publisher confirms, or the embedded SQLite queue.

The embedded queue is kombu's SQLAlchemy transport with two repairs, so that it keeps the promise "nothing is
lost" on a laptop too:
- kombu marks a fetched message invisible and never deletes it: an ack here deletes its row, so the file does not
  grow without end and an acked message can never come back;
- a consumer killed with messages in hand leaves them invisible forever: `reclaim_unacked()`, called when a
  worker starts, makes them visible again. That is only safe because the embedded queue serves one worker process
  at a time, which `claim_embedded_queue()` enforces with a lock file: a second worker on the same data directory
  is refused at start instead of reclaiming the first one's messages in flight.

`publishing_in_one_transaction()` lets the publisher store a batch of messages with one commit instead of one
each. `read_in_place()` reads a queue's messages without fetching them, for the dead letters, which nobody consumes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from queue import Empty
from typing import Any, TextIO

from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from kombu.transport import sqlalchemy as kombu_sqlalchemy
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from sqlalchemy import create_engine, event, text

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.core.errors import ConfigurationError, TransientError

EMBEDDED_SCHEME = "sqla+"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # intake and worker read and write at once
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash; fsyncs at checkpoints
    cursor.close()


class _EmbeddedChannel(kombu_sqlalchemy.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rows: dict[str, int] = {}
        self._rows_lock = threading.Lock()
        self._batch_queues: dict[str, Any] | None = None  # inside `one_transaction()`: queue name → its row
        super().__init__(*args, **kwargs)

    @contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Messages published inside are inserted in one transaction, committed once when the block ends (kombu
        commits each message on its own); if the block raises, none of them is stored."""
        self._batch_queues = {}
        try:
            with self.session.no_autoflush:
                yield
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        finally:
            self._batch_queues = None

    # kombu names the second argument `message` in the abstract channel and `payload` in the SQLAlchemy one.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self._batch_queues is None:
            super()._put(queue, payload, **kwargs)
            return
        row = self._batch_queues.get(queue)
        if row is None:
            row = self._batch_queues[queue] = self._get_or_create(queue)
        self.session.add(self.message_cls(dumps(payload), row))

    def _engine_from_config(self) -> Any:
        engine = create_engine(self.connection.client.hostname, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        obj = self._get_or_create(queue)
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            row = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id)
                .filter(self.message_cls.visible.is_(True))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if row is None:
                raise Empty()
            row.visible = False
            payload = loads(bytes_to_str(row.payload))
            if payload.get("redelivered"):  # kombu's own restore mark, or ours from reclaim_unacked()
                payload["properties"].setdefault("delivery_info", {})["redelivered"] = True
            with self._rows_lock:
                self._rows[payload["properties"]["delivery_tag"]] = row.id
            return payload
        finally:
            self.session.commit()

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple=multiple)
        self._delete_row(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)  # a requeue stores a fresh copy first
        self._delete_row(delivery_tag)

    def _restore(self, message: Any) -> None:
        super()._restore(message)  # stores a fresh copy (at channel close, for unacked messages)
        self._delete_row(message.delivery_tag)

    def _delete_row(self, delivery_tag: str) -> None:
        with self._rows_lock:
            row_id = self._rows.pop(delivery_tag, None)
        if row_id is not None:
            self.session.query(self.message_cls).filter(self.message_cls.id == row_id).delete()
            self.session.commit()


class EmbeddedTransport(kombu_sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, acks deleting rows (see the module docstring)."""

    Channel = _EmbeddedChannel


def publishing_in_one_transaction(channel: Any) -> AbstractContextManager[None]:
    """On the embedded queue, a block whose publishes on `channel` are committed together; elsewhere (kombu's
    other virtual transports) each publish stands alone."""
    if isinstance(channel, _EmbeddedChannel):
        return channel.one_transaction()
    return nullcontext()


def is_embedded(url: str) -> bool:
    return url.startswith(EMBEDDED_SCHEME)


def open_broker(settings: Settings) -> Connection:
    """A kombu connection (not yet connected) for the configured broker."""
    url = settings.broker_url
    if is_embedded(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Connection(url.removeprefix(EMBEDDED_SCHEME), transport=EmbeddedTransport)
    return Connection(
        url,
        heartbeat=settings.broker.heartbeat,
        transport_options={"confirm_publish": True},
        connect_timeout=5,
    )


def probe_broker(settings: Settings) -> str:
    """Connect once (a readiness or `check` probe); the broker's URL, redacted. Raises TransientError naming why,
    or ConfigurationError when RabbitMQ refuses the login (retrying cannot fix that)."""
    connection = open_broker(settings)
    try:
        connection.ensure_connection(max_retries=1, interval_start=0.2)
    except AccessRefused:
        raise ConfigurationError(
            "RabbitMQ refused the login: check the user and password of CTSYNC_BROKER__URL", system="broker"
        ) from None
    except Exception as exc:  # kombu raises its own and the transport's errors here  # noqa: BLE001
        raise TransientError(redact_text(f"{type(exc).__name__}: {exc}"), system="broker") from None
    finally:
        connection.release()
    return redact_text(settings.broker_url)


def reclaim_unacked(connection: Connection) -> int:
    """Embedded queue only: make messages a killed consumer held visible again, marked redelivered (what the dead
    consumer did with them is unknown, as after a RabbitMQ redelivery). Returns how many."""
    if not isinstance(connection.transport, EmbeddedTransport):
        return 0
    channel = connection.channel()
    try:
        held = channel.session.query(channel.message_cls).filter(channel.message_cls.visible.is_(False)).all()
        for row in held:
            payload = loads(bytes_to_str(row.payload))
            payload["redelivered"] = True
            row.payload = dumps(payload)
            row.visible = True
        channel.session.commit()
        return len(held)
    finally:
        channel.close()


def read_in_place(
    connection: Connection, queue: str, *, page: int = 200
) -> Generator[tuple[Any, Callable[[], bool]], None, None]:
    """Embedded queue only: the messages ready in `queue`, oldest first, read where they lie (a fetch would mark
    them invisible and a hand-back would store them again at the end), each with a function that deletes it and
    says whether it was still there. For reading a queue nobody consumes: the dead letters."""
    channel = connection.channel()
    try:
        rows = channel.message_cls
        queue_id = channel._get_or_create(queue).id
        after = 0
        while True:
            found = (
                channel.session.query(rows.id, rows.payload)
                .filter(rows.queue_id == queue_id, rows.visible.is_(True), rows.id > after)
                .order_by(rows.id)
                .limit(page)
                .all()
            )
            channel.session.commit()  # end the read transaction: deletes below take the write lock
            for row_id, payload in found:
                message = channel.Message(loads(bytes_to_str(payload)), channel=channel)
                yield message, partial(_delete_row, channel, row_id)
            if len(found) < page:
                return
            after = found[-1][0]
    finally:
        channel.close()


def _delete_row(channel: Any, row_id: int) -> bool:
    deleted = channel.session.query(channel.message_cls).filter(channel.message_cls.id == row_id).delete()
    channel.session.commit()
    return bool(deleted)


def claim_embedded_queue(settings: Settings) -> TextIO | None:
    """On the embedded queue, the lock that makes this the data directory's one worker: keep the returned file open
    for the worker's life (the lock goes with the process, however it ends). None on RabbitMQ. Raises
    ConfigurationError naming the holder when another worker has it."""
    if not is_embedded(settings.broker_url):
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "worker.lock"
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise ConfigurationError(
            f"another ct-sync worker ({holder}) already uses the embedded queue in {settings.data_dir.resolve()}: "
            "it serves one worker; for several, use RabbitMQ (CTSYNC_BROKER__URL)",
            system="broker",
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock
