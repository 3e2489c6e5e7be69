"""The emulators served over real HTTP on 127.0.0.1, on a background thread — the CrowdTwist sandbox
and the Siebel REST emulator — for the demo, `ct-sync sandbox`, the tests and the benchmarks.

The emulators build their apps; serving them is `sync_worker.http`'s job; this module joins the two.
"""

from __future__ import annotations

from typing import Any

from sandbox.crowdtwist import SandboxState, create_sandbox_app
from sandbox.siebel.emulator import BASE_PATH, SiebelEmulator
from sync_worker.http import BackgroundServer


class SandboxServer(BackgroundServer):
    """The CrowdTwist sandbox over HTTP (HTTPS with uvicorn's `ssl_certfile`/`ssl_keyfile`). `.state` is live:
    faults, counters, users."""

    def __init__(
        self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any
    ) -> None:
        self.state = state or SandboxState()
        super().__init__(create_sandbox_app(self.state), host=host, port=port, **uvicorn_options)


class SiebelEmulatorServer(BackgroundServer):
    """The Siebel REST emulator over HTTP (HTTPS as the sandbox); `.base_url` ends with /siebel/v1.0 like the
    base-URL setting."""

    def __init__(
        self,
        emulator: SiebelEmulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        setting: str = "port",
        **uvicorn_options: Any,
    ) -> None:
        self.emulator = emulator
        super().__init__(emulator.app, host=host, port=port, setting=setting, **uvicorn_options)

    @property
    def base_url(self) -> str:
        return self.url + BASE_PATH
