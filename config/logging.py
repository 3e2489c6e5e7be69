"""Logging setup: structlog for our own lines, stdlib loggers (kombu, amqp, httpx, uvicorn) through the same chain.

JSON lines when stderr is not a terminal, a readable console on one (`CTSYNC_LOG__FORMAT` or `--log-json` /
`--log-console` decide otherwise). The `redact_secrets` processor runs on every line, ours and the libraries', so
an `api_key` in a URL never reaches the output. uvicorn's own start and stop lines (and the terminal colour codes
it attaches to them) are left out: ct-sync says what it serves in its own words.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from config.redaction import redact_value

# Libraries whose INFO lines are noise in a worker's log: every HTTP request, every AMQP frame, uvicorn's "Started
# server process" (its errors stay: they are WARNING and above).
_QUIET_LIBRARIES = (
    "httpx", "httpcore", "amqp", "kombu", "uvicorn.access", "uvicorn.error", "asyncio", "aiosmtpd", "mail.log",
)  # fmt: skip


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Drop keys named like secrets and scrub credentials out of every string value (URLs included)."""
    redacted: MutableMapping[str, Any] = redact_value(dict(event_dict))
    return dict(redacted)


def drop_colour_codes(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """uvicorn attaches a terminal-coloured copy of its message as `color_message`: never ours to print."""
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        drop_colour_codes,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def configure_logging(*, level: str = "INFO", json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger once, from the entrypoint."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    structlog.configure(
        # Below the level, a line of ours is dropped before any other processor runs (it costs next to nothing).
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_formatter(json=json, colors=stream.isatty()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def logging_to_file(path: Path) -> Iterator[None]:
    """Every log line goes to `path`, as JSON lines, instead of the terminal while inside (the demo's table stays
    readable); then the earlier destination is restored."""
    root = logging.getLogger()
    earlier = root.handlers[:]
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_formatter(json=True, colors=False))
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = earlier
        handler.close()


def _formatter(*, json: bool, colors: bool) -> logging.Formatter:
    renderer: Processor = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=colors)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
