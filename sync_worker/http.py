"""Serving ASGI apps with uvicorn: on a background thread (tests, demo, benchmarks) or in the foreground (CLI).

One place that knows how to start uvicorn on port 0, learn the port it got, and stop it cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

import uvicorn

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


def serve_forever(app: Any, *, host: str, port: int) -> None:
    """Run in the foreground until SIGINT/SIGTERM (uvicorn installs the handlers)."""
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
