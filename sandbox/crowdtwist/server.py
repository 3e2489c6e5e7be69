"""The sandbox's two fronts: an httpx transport (in-process, no sockets) and a raw ASGI app for real HTTP
(served by `sync_worker.http`, like every app).

The ASGI app is deliberately bare (no framework routing): it is the CrowdTwist of the benchmarks and must not be
their bottleneck. Delays (latency, hangs) are awaited, so one slow answer never holds up the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx

from sandbox.crowdtwist import control
from sandbox.crowdtwist.answers import Answer
from sandbox.crowdtwist.state import SandboxState

ASGIScope = dict[str, Any]


def serve(
    state: SandboxState, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
) -> Answer:
    """One request, to the control routes or to CrowdTwist's API."""
    if path.startswith(control.PREFIX):
        return control.answer(state, method, path, body)
    return state.handle(method, path, query, headers, body)


class SandboxTransport(httpx.BaseTransport):
    """Serves a `SandboxState` to an `httpx.Client` in the calling thread; delays sleep that thread."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        headers = {key.lower(): value for key, value in request.headers.items()}
        answer = serve(self.state, request.method, request.url.path, query, headers, request.read())
        if answer.delay:
            timeout = (request.extensions.get("timeout") or {}).get("read")
            if timeout is not None and answer.delay > timeout:
                time.sleep(timeout)
                raise httpx.ReadTimeout("sandbox: no answer in time", request=request)
            time.sleep(answer.delay)
        return _response(answer)


def _response(answer: Answer) -> httpx.Response:
    return httpx.Response(
        answer.status, content=answer.body, headers=[("content-type", answer.content_type), *answer.headers]
    )


def create_sandbox_app(state: SandboxState) -> Any:
    """A raw ASGI application serving `state`."""

    async def app(scope: ASGIScope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        # raw_path keeps percent-encoding, so a Member Number holding "/" stays one path segment
        path = (scope.get("raw_path") or scope["path"].encode()).decode().split("?", 1)[0]
        answer = serve(state, scope["method"], path, query, headers, body)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", answer.content_type.encode())]
                + [(key.encode(), value.encode()) for key, value in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    return app
