"""Logging setup: structlog for our own lines, stdlib loggers (kombu, amqp, httpx, uvicorn) through the same chain.

JSON lines when stderr is not a terminal, a readable console on one. The `redact_secrets` processor runs on
every line, ours and the libraries', so an `api_key` in a URL never reaches the output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from config.redaction import redact_value

# Libraries whose INFO lines are noise in a worker's log: every HTTP request, every AMQP frame.
_QUIET_LIBRARIES = ("httpx", "httpcore", "amqp", "kombu", "uvicorn.access", "asyncio", "aiosmtpd", "mail.log")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Drop keys named like secrets and scrub credentials out of every string value (URLs included)."""
    redacted: MutableMapping[str, Any] = redact_value(dict(event_dict))
    return dict(redacted)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
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
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared = _shared_processors()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
