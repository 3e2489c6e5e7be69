"""Adapter: the dead-letter queue (kombu), on RabbitMQ or the embedded queue. Implements the core's `DeadLetters`,
and reads the depth of the queues beside it.

Reading never consumes. On RabbitMQ, letters are fetched unacknowledged and handed back when the channel closes
(RabbitMQ puts them back where they were); the embedded queue's rows are read where they lie. Replay and discard
read the same way and remove only the letters chosen, a replayed one only after the broker confirmed the fresh
event for its member. Every call opens a connection of its own, so the console's threads never share one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.message import Message

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.core.dead_letters import DeadLetter, LetterResult
from sync_worker.core.errors import TransientError
from sync_worker.core.ports import EventPublisher
from sync_worker.core.resubmit import resubmit_event
from sync_worker.queue.broker import EmbeddedTransport, open_broker, read_in_place
from sync_worker.queue.topology import QueueTopology

# A letter as a scan holds it, with the function that takes it off the queue (False: it was gone already).
_Held = tuple[DeadLetter, Callable[[], bool]]


class DeadLetterQueue:
    def __init__(self, connect: Callable[[], Connection], topology: QueueTopology) -> None:
        self._connect = connect
        self._topology = topology

    def count(self) -> int:
        with self._connection() as connection:
            queue = self._topology.dead_queue.bind(connection.default_channel)
            _, count, _ = queue.queue_declare()
            return int(count)

    def depths(self) -> dict[str, int]:
        """Messages ready in the work, delay and dead-letter queues (the console's overview), by role."""
        roles = {
            "work": self._topology.work_queue,
            "delay": self._topology.delay_queue,
            "dead": self._topology.dead_queue,
        }
        with self._connection() as connection:
            channel = connection.default_channel
            return {role: int(queue.bind(channel).queue_declare()[1]) for role, queue in roles.items()}

    def peek(self, *, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        if limit <= 0:
            return letters
        with self._scan() as held:
            for letter, _remove in held:
                letters.append(letter)
                if len(letters) >= limit:
                    break
        return letters

    def replay(self, letter_ids: Collection[str] | None, publisher: EventPublisher) -> LetterResult:
        def act(letter: DeadLetter, remove: Callable[[], bool], result: LetterResult) -> None:
            if letter.member_number is None:
                result.left.append(letter)
                return
            publisher.publish(resubmit_event(letter.member_number))
            remove()
            result.done.append(letter)

        return self._each(letter_ids, act)

    def discard(self, letter_ids: Collection[str]) -> LetterResult:
        def act(letter: DeadLetter, remove: Callable[[], bool], result: LetterResult) -> None:
            if remove():
                result.done.append(letter)

        return self._each(letter_ids, act)

    def _each(
        self, letter_ids: Collection[str] | None, act: Callable[[DeadLetter, Callable[[], bool], LetterResult], None]
    ) -> LetterResult:
        """Scan the queue once, acting on the chosen letters (None: all); stop early once every id was met."""
        wanted = None if letter_ids is None else set(letter_ids)
        result = LetterResult()
        met: set[str] = set()
        with self._scan() as held:
            for letter, remove in held:
                if wanted is not None and letter.letter_id not in wanted:
                    continue
                act(letter, remove, result)
                met.add(letter.letter_id)
                if wanted is not None and met == wanted:
                    break
        result.missing = sorted((wanted or set()) - met)
        return result

    @contextmanager
    def _scan(self) -> Iterator[Iterator[_Held]]:
        with self._connection() as connection:
            if isinstance(connection.transport, EmbeddedTransport):
                rows = read_in_place(connection, self._topology.dead_queue.name)
                try:
                    yield ((_letter(message), remove) for message, remove in rows)
                finally:
                    rows.close()
                return
            channel = connection.channel()
            try:
                queue = self._topology.dead_queue.bind(channel)
                queue.declare()
                yield _fetched(queue)
            finally:
                channel.close()  # what was fetched and not acknowledged goes back where it was

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A fresh connection; the broker's own exceptions leave as TransientError naming the broker."""
        connection = self._connect()
        errors = (*connection.connection_errors, *connection.channel_errors, OSError, KombuOperationalError)
        try:
            with connection:
                connection.ensure_connection(max_retries=1, interval_start=0.2)
                yield connection
        except errors as exc:
            reason = redact_text(str(exc)) or type(exc).__name__
            raise TransientError(f"dead-letter queue unavailable: {reason}", system="broker") from None


def _fetched(queue: Queue) -> Iterator[_Held]:
    while (message := queue.get(no_ack=False)) is not None:
        yield _letter(message), partial(_ack, message)


def _ack(message: Message) -> bool:
    message.ack()
    return True


def _letter(message: Message) -> DeadLetter:
    return DeadLetter.read(message.headers or {}, message.body or b"", content_type=message.content_type)


def build_dead_letters(settings: Settings) -> DeadLetterQueue:
    return DeadLetterQueue(lambda: open_broker(settings), QueueTopology.from_settings(settings.broker))
