"""The one place that serves HTTP: ASGI apps on uvicorn, on a background thread (the worker's health server, the
demo, tests, benchmarks) or in the foreground (`ct-sync intake`, `ct-sync sandbox`). Adapters build apps (the
intake, the emulators); they never serve them.

Knows how to start uvicorn on port 0, learn the port it got, and stop it cleanly; and builds the health app
(`/metrics`, `/healthz`, `/readyz`) the worker serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, Self

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

Readiness = Callable[[], dict[str, bool]]  # check name → passing

_START_TIMEOUT = 10.0


class BackgroundServer:
    """`with BackgroundServer(app) as server: httpx.get(server.url + "/healthz")`."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off", **uvicorn_options
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)
        self._host = host

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._server.config.ssl_certfile else "http"
        return f"{scheme}://{self._host}:{self.port}"

    def start(self) -> Self:
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
        self._thread.join(timeout=_START_TIMEOUT)

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


def serve_forever(app: Any, *, host: str, port: int) -> None:
    """Run in the foreground until SIGINT/SIGTERM; the requests in flight are answered first."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    _ForegroundServer(config).run()


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
        super().__init__(health_app(registry=registry, readiness=readiness), host=host, port=port)
