"""A local emulator of CrowdTwist's API v2, for the demo, the tests and the benchmarks, shaped by Oracle's own
captured calls (tests/fixtures/crowdtwist/) and its docs.

    state.py        `SandboxState`: users, deletions, lists; thread-safe, no I/O
    switches.py     `Faults`, `Rules` (one switch per unpublished behaviour), `Counters`
    answers.py      `Answer` and CrowdTwist's envelopes (refusals, unknown users, maintenance)
    routes.py       which operation a method and path name (both slash forms), paging of list endpoints
    validation.py   the documented field rules (names in any script, email, postal code, accepted fields)
    user_object.py  the user object rendered with every key and type of the captured answers
    guesses.py      every behaviour no source pins down, in one place
    control.py      the `/_sandbox/` routes: stats, reset, faults, rules, the clock, seeded lists
    server.py       the fronts: an httpx transport (in-process) and a raw ASGI app, which
                    `sandbox.servers.SandboxServer` serves on 127.0.0.1 (and `ct-sync sandbox` in the foreground)
"""

from sandbox.crowdtwist.answers import Answer
from sandbox.crowdtwist.server import SandboxTransport, create_sandbox_app
from sandbox.crowdtwist.state import SandboxState
from sandbox.crowdtwist.switches import Faults, Rules

__all__ = ["Answer", "Faults", "Rules", "SandboxState", "SandboxTransport", "create_sandbox_app"]
