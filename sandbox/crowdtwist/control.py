"""The sandbox's own routes under `/_sandbox/`, for tests, benchmarks and `ct-sync sandbox` users: counters, reset,
faults, rules, the clock and seeded lists, driven over HTTP."""

from __future__ import annotations

from dataclasses import asdict

from sandbox.crowdtwist.answers import Answer, decode_object, json_answer, refused, unknown_route
from sandbox.crowdtwist.state import SandboxState

PREFIX = "/_sandbox/"


def answer(state: SandboxState, method: str, path: str, body: bytes) -> Answer:
    """GET stats; POST reset, reset-counters, faults, rules, advance {"seconds"}, lists {"user_id", "operation",
    "items"}."""
    if path == "/_sandbox/stats" and method == "GET":
        return json_answer(200, state.stats())
    if method != "POST":
        return unknown_route()
    if path == "/_sandbox/reset":
        state.reset()
        return json_answer(200, {"reset": True})
    if path == "/_sandbox/reset-counters":
        state.reset_counters()
        return json_answer(200, {"reset": "counters"})
    document, problem = decode_object(body)
    if problem:
        return problem
    try:
        if path == "/_sandbox/faults":
            state.set_faults(**document)
            return json_answer(200, asdict(state.faults))
        if path == "/_sandbox/rules":
            state.set_rules(**document)
            return json_answer(200, asdict(state.rules))
        if path == "/_sandbox/advance":
            state.advance(float(document["seconds"]))
            return json_answer(200, {"advanced": document["seconds"]})
        if path == "/_sandbox/lists":
            state.add_list_items(int(document["user_id"]), str(document["operation"]), list(document["items"]))
            return json_answer(200, {"added": len(document["items"])})
    except (ValueError, TypeError, KeyError) as exc:
        return refused(f"{type(exc).__name__}: {exc}")
    return unknown_route()
