"""A local emulator of CrowdTwist's member API, for the demo, the tests and the benchmarks.

`SandboxState` holds users, rules, faults and counters; `SandboxTransport` serves it in-process to httpx;
`create_sandbox_app` makes it an ASGI app, which `sync_worker.emulators.SandboxServer` serves on 127.0.0.1 (and
`ct-sync sandbox` in the foreground).
"""

from crowdtwist_client.sandbox.server import SandboxTransport, create_sandbox_app
from crowdtwist_client.sandbox.state import Answer, Faults, SandboxState

__all__ = ["Answer", "Faults", "SandboxState", "SandboxTransport", "create_sandbox_app"]
