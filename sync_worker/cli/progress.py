"""Progress of a long command, "N of M" with rate and ETA: a `rich` bar on a terminal, a log line every few seconds
otherwise (under systemd, in a cron mail, in a CI log), where a bar would be noise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = structlog.get_logger("ct_sync.cli")
LOG_EVERY = 5.0  # seconds between progress lines when no one watches a bar

Advance = Callable[[int, int | None], None]  # (done, total or None when unknown)


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self._unit = unit

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} {self._unit}/s" if task.speed else "")


@contextmanager
def progress(console: Console, what: str, *, unit: str, event: str) -> Iterator[Advance]:
    """`with progress(err_console, "reading changed members", unit="members", event="poll_progress") as advance:
    advance(done, total)`. The bar is transient: it leaves the screen to the summary printed after it."""
    if console.is_terminal:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(unit),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(what, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    yield _LogLines(what, event=event)


class _LogLines:
    """The same progress as a log line at most every `LOG_EVERY` seconds: done, total, rate, seconds left."""

    def __init__(self, what: str, *, event: str) -> None:
        self._what = what
        self._event = event
        self._started = time.monotonic()
        self._logged = self._started

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._logged < LOG_EVERY:
            return
        self._logged = now
        rate = done / max(now - self._started, 1e-9)
        left = round((total - done) / rate) if total is not None and rate > 0 else None
        log.info(self._event, what=self._what, done=done, total=total, per_second=round(rate, 1), eta_seconds=left)
