"""Virtual time for code that sleeps in several threads: a clock that moves only when every thread it runs sleeps.

`VirtualTime.run(tasks)` runs each task in a thread of its own, one thread at a time: a thread runs until it calls
`sleep`, which parks it until its wake-up is the earliest one left; the clock then jumps there. So a run whose
threads pace, retry and wait on each other's answers takes no real time, and the same run gives the same result
on a busy machine as on an idle one (the order of wake-ups is the clock's, ties in the order the sleeps began).

The tasks must block on nothing but `sleep` (a lock held across a `sleep` would stop the run).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Sequence


class VirtualTime:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._condition = threading.Condition()
        self._asleep: list[tuple[float, int, int]] = []  # (wake-up, order, thread)
        self._order = itertools.count()
        self._running: int | None = None  # the one thread allowed to run
        self._local = threading.local()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        me: int | None = getattr(self._local, "token", None)
        if me is None:
            raise RuntimeError("VirtualTime.sleep outside VirtualTime.run")
        with self._condition:
            self._park(me, self.now + max(seconds, 0.0))
            self._condition.wait_for(lambda: self._running == me)

    def run(self, tasks: Sequence[Callable[[], None]]) -> None:
        """Each task in its own thread, in virtual time, until every one has returned; the first error is raised."""
        errors: list[BaseException] = []

        def thread(token: int, task: Callable[[], None]) -> None:
            self._local.token = token
            with self._condition:
                self._condition.wait_for(lambda: self._running == token)
            try:
                task()
            except BaseException as error:  # handed to the caller of run
                errors.append(error)
            finally:
                with self._condition:
                    self._next()

        threads = [threading.Thread(target=thread, args=(token, task)) for token, task in enumerate(tasks)]
        with self._condition:
            for token in range(len(tasks)):
                self._park(token, self.now, start=False)
        for started in threads:
            started.start()
        with self._condition:
            self._next()
        for started in threads:
            started.join()
        if errors:
            raise errors[0]

    def _park(self, token: int, wake_up: float, *, start: bool = True) -> None:
        """Called with the condition held: `token` sleeps until `wake_up`; the next thread runs."""
        heapq.heappush(self._asleep, (wake_up, next(self._order), token))
        if start:
            self._next()

    def _next(self) -> None:
        """Called with the condition held: wake the earliest sleeper, moving the clock to its wake-up."""
        if self._asleep:
            wake_up, _, token = heapq.heappop(self._asleep)
            self.now = max(self.now, wake_up)
            self._running = token
        else:
            self._running = None
        self._condition.notify_all()
