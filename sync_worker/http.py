"""The one place that serves HTTP: ASGI apps on uvicorn, on a background thread (the worker's health server, the
demo, tests, benchmarks) or in the foreground (`ct-sync intake`, `ct-sync sandbox`). Adapters build apps (the
intake, the emulators); they never serve them.

Binds the listening socket itself before uvicorn starts, so a port already taken is one line naming the setting
that chose it (a `ConfigurationError`, exit 2), not uvicorn's log line and exit 1; starts on port 0 and learns the
port it got; stops cleanly; and builds the health app (`/metrics`, `/healthz`, `/readyz`) the worker serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, Self

import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sync_worker.core.errors import ConfigurationError

log = structlog.get_logger("ct_sync.http")
Readiness = Callable[[], dict[str, bool]]  # check name → passing

_START_TIMEOUT = 10.0


def listen(host: str, port: int, *, setting: str) -> socket.socket:
    """A socket bound to host:port for uvicorn to serve on. Raises `ConfigurationError` naming `setting` (the
    setting or option that chose the port) when the port is taken or the address is not this host's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
    # Accepted connections inherit it: without, small answers wait on the client's delayed ACK (40 ms each).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"{setting}: {bind_problem(exc, host, port)}", system="http") from None
    return sock


def bind_problem(exc: OSError, host: str, port: int) -> str:
    """Why host:port cannot be listened on, in a few words."""
    if exc.errno == errno.EADDRINUSE:
        return f"{host}:{port} is already in use by another process"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this host"
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this process does not have"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _config(app: Any, host: str, port: int, **uvicorn_options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off", **uvicorn_options
    )


class BackgroundServer:
    """`with BackgroundServer(app) as server: httpx.get(server.url + "/healthz")`."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        setting: str = "port",
        **uvicorn_options: Any,
    ) -> None:
        self._server = uvicorn.Server(_config(app, host, port, **uvicorn_options))
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)
        self._host = host
        self._requested_port = port
        self._setting = setting
        self._socket: socket.socket | None = None

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket] if self._socket else None))

    @property
    def port(self) -> int:
        assert self._socket is not None, "the server is not started"
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._server.config.ssl_certfile else "http"
        return f"{scheme}://{self._host}:{self.port}"

    def start(self) -> Self:
        self._socket = listen(self._host, self._requested_port, setting=self._setting)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(_START_TIMEOUT / 0.01)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            deadline.wait(0.01)
        raise RuntimeError(f"server on {self._host} did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.ident is not None:  # started (a start refused for a taken port starts no thread)
            self._thread.join(timeout=_START_TIMEOUT)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _ForegroundServer(uvicorn.Server):
    """uvicorn's server, but a stop asked for (SIGTERM from systemd, Ctrl-C) ends the process normally, exit 0,
    after the requests in flight are answered; uvicorn would re-raise the signal and die by it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def serve_forever(
    app: Any, *, host: str, port: int, setting: str, name: str, listening: Callable[[str], None] = lambda url: None
) -> None:
    """Run in the foreground until SIGINT/SIGTERM; the requests in flight are answered first. `setting` names what
    chose the port, for the one line a port already taken gets; `name` says what is served, for the log;
    `listening` hears the URL once the port is bound (a URL printed before could be another process's)."""
    with listen(host, port, setting=setting) as sock:
        url = f"http://{host}:{sock.getsockname()[1]}"
        log.info("serving", what=name, url=url)
        listening(url)
        _ForegroundServer(_config(app, host, port)).run(sockets=[sock])


def health_app(*, registry: CollectorRegistry | None, readiness: Readiness) -> Starlette:
    """`/metrics` (when a registry is given), `/healthz` (alive) and `/readyz` (200 when every check passes, else
    503 with the checks). Readiness may do I/O, so it runs on Starlette's thread pool, not the event loop."""

    def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    def readyz(_request: Request) -> JSONResponse:
        checks = readiness()
        return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    if registry is not None:
        scraped = registry

        def metrics(_request: Request) -> Response:
            return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

        routes.append(Route("/metrics", metrics))
    return Starlette(routes=routes)


def with_metrics(app: Any, registry: CollectorRegistry) -> Starlette:
    """`app` with the registry's `/metrics` beside it (the intake's own routes stay as they are)."""

    def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics), Mount("/", app=app)])


class HealthServer(BackgroundServer):
    """The worker's health and metrics endpoints, on their own port (`CTSYNC_METRICS__PORT`)."""

    def __init__(
        self, *, registry: CollectorRegistry | None, readiness: Readiness, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        app = health_app(registry=registry, readiness=readiness)
        super().__init__(app, host=host, port=port, setting="CTSYNC_METRICS__PORT")
