"""Entrypoint: the intake, the HTTP endpoint Siebel's workflow posts member events to (Starlette on uvicorn).

    POST /v1/member-events   202 {"event_id"} once the queue confirmed; 422 naming the offending fields; 413 over
                             the size limit; 401 without the bearer token (when one is set); 503 when the queue
                             cannot take the event (and "OIC Failure" written onto the member where Siebel answers)
    GET  /openapi.json       an OpenAPI 3.0 document Siebel imports as an Outbound REST Service
    GET  /healthz            alive
    GET  /readyz             200 when the queue and the member store answer, 503 (with the checks) when not

Only structure is checked here: member data CrowdTwist would refuse (an empty last name, a bad email) is accepted
and becomes a "Data Error" on the member, where the Siebel administrator sees it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sync_worker.core.errors import CtSyncError
from sync_worker.core.member import Member, SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import EventPublisher, MemberStore
from sync_worker.core.sync import write_failure

log = structlog.get_logger("ct_sync.intake")
EVENTS_PATH = "/v1/member-events"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (category Cc), all 65 of them


class IntakeMember(BaseModel):
    """The member as the workflow sends it: Siebel field names, string values (documentation and 422 texts)."""

    model_config = ConfigDict(extra="allow")

    Id: str = Field(min_length=1, description="Siebel row id")
    member_number: str = Field(alias="Member Number", min_length=1, description="becomes CrowdTwist third_party_id")
    Status: str | None = Field(default=None, description="Active, or any other status (inactive in CrowdTwist)")
    member_type: str | None = Field(default=None, alias="Member Type", description="only Individual is synced")
    program_id: str | None = Field(default=None, alias="Program Id")
    first_name: str | None = Field(default=None, alias="First Name")
    last_name: str | None = Field(default=None, alias="Last Name")
    middle_name: str | None = Field(default=None, alias="Middle Name")
    email_address: str | None = Field(default=None, alias="Email Address")
    date_of_birth: str | None = Field(default=None, alias="Date of Birth", description="YYYY-MM-DD or MM/DD/YYYY")
    postal_code: str | None = Field(default=None, alias="Primary Postal Code")
    city: str | None = Field(default=None, alias="Primary City")
    country_code: str | None = Field(default=None, alias="Primary Country Code")
    gender: str | None = Field(default=None, alias="M/F")
    Language: str | None = None
    Updated: str = Field(description="ISO 8601 or MM/DD/YYYY HH:MM:SS")


class IntakeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["enroll", "update"]
    member: IntakeMember


class Problem(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def create_intake_app(
    *,
    publisher: EventPublisher,
    store: MemberStore,
    token: str | None,
    max_body_bytes: int,
    submit: Callable[[MemberEvent], Future[None]] | None = None,
    readiness: Callable[[], dict[str, bool]] = dict,
    on_answer: Callable[[int], None] = lambda status: None,
    on_refused: Callable[[MemberEvent, str], None] = lambda event, reason: None,
) -> Starlette:
    """`submit`, when given, hands an event to the publisher without blocking: the future completes once the queue
    confirmed it (or fails with a CtSyncError), and the request awaits it holding no thread; without it, each
    request calls `publisher.publish` on the thread pool. `on_answer` hears every status answered to Siebel
    (metrics): it runs on the event loop and must be quick. `on_refused` hears every event the queue would not
    take, after its OIC Failure was written (history, alerts): it runs off the event loop. Neither may raise."""

    async def publish(event: MemberEvent) -> None:
        if submit is None:
            await run_in_threadpool(publisher.publish, event)
        else:
            await asyncio.wrap_future(submit(event))

    async def member_events(request: Request) -> Response:
        response = await _member_event(request)
        on_answer(response.status_code)
        return response

    async def _member_event(request: Request) -> Response:
        try:
            _authorize(request, token)
            document = _json(await _body(request, max_body_bytes))
            event = _event(document)
        except Problem as problem:
            return JSONResponse({"detail": problem.detail}, status_code=problem.status)
        try:
            await publish(event)
        except CtSyncError as exc:
            reason = f"Integration queue unavailable: {exc.message}"
            log.error("intake_queue_unavailable", member_number=event.member_number, error=exc.message)
            await run_in_threadpool(_write_oic_failure, store, event.member_number, reason)
            await run_in_threadpool(on_refused, event, reason)
            return JSONResponse({"detail": reason}, status_code=503)
        # DEBUG, not INFO: in Siebel's bursts (thousands a second) a line per event took a fifth of the intake's CPU,
        # and would run into journald's rate limit, which then drops the lines that matter (the refusals above).
        # `/metrics` counts the 202s; the worker logs each event it handles.
        log.debug("intake_event_queued", member_number=event.member_number, event_id=event.event_id)
        return JSONResponse({"event_id": event.event_id}, status_code=202)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = await run_in_threadpool(readiness)
        return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

    return Starlette(
        routes=[
            Route(EVENTS_PATH, member_events, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    given = request.headers.get("authorization", "")
    expected = f"Bearer {token}"
    if not hmac.compare_digest(given.encode(), expected.encode()):  # constant time
        raise Problem(401, "missing or wrong bearer token")


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # chunked uploads declare no length
            raise Problem(413, f"body over {limit} bytes")
    return bytes(body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, [{"field": "body", "problem": "not valid JSON"}]) from None


def _event(document: Any) -> MemberEvent:
    try:
        request = IntakeRequest.model_validate(document)
    except ValidationError as exc:
        raise Problem(422, _problems(exc)) from None
    fields = request.member.model_dump(by_alias=True)
    controls = [name for name, value in fields.items() if isinstance(value, str) and _has_control(value)]
    if controls:
        raise Problem(422, [{"field": name, "problem": "contains control characters"} for name in controls])
    try:
        member = Member.model_validate(fields)
    except ValidationError as exc:
        raise Problem(422, _problems(exc, prefix="member")) from None
    return MemberEvent(
        event_type=request.event,
        member_number=member.member_number,
        row_id=member.row_id,
        updated=member.updated,
        source="intake",
    )


def _problems(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """Each problem named by its Siebel field; the value itself is never echoed (it may be personal data)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        location = [prefix] if prefix else []
        location += [str(part) for part in error["loc"]]
        problems.append({"field": ".".join(location) or "body", "problem": error["msg"]})
    return problems


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _write_oic_failure(store: MemberStore, member_number: str, reason: str) -> None:
    try:
        write_failure(store, member_number, status=SyncStatus.OIC_FAILURE, error=reason, at=datetime.now(UTC))
    except CtSyncError as exc:
        log.error("intake_oic_failure_not_written", error=exc.message)


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.0.3 (Siebel's REST import reads 3.0): pydantic's schemas with 3.1 `null` unions folded away."""
    refs = "#/components/schemas/{model}"
    member_schema = _openapi30(IntakeMember.model_json_schema(by_alias=True))
    request_schema = _openapi30(IntakeRequest.model_json_schema(by_alias=True, ref_template=refs))
    request_schema.pop("$defs", None)
    problem_item = {"type": "object", "properties": {"field": {"type": "string"}, "problem": {"type": "string"}}}
    problems = {"type": "object", "properties": {"detail": {"type": "array", "items": problem_item}}}
    message = {"type": "object", "properties": {"detail": {"type": "string"}}}
    accepted = {"type": "object", "properties": {"event_id": {"type": "string"}}}

    def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        if schema is None:
            return {"description": description}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    operation = {
        "operationId": "postMemberEvent",
        "summary": "A member was enrolled or changed in Siebel Loyalty",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MemberEvent"}}},
        },
        "responses": {
            "202": answer("queued", accepted),
            "401": answer("missing or wrong bearer token"),
            "413": answer("body too large"),
            "422": answer("invalid event", problems),
            "503": answer("queue unavailable", message),
        },
        "security": [{"bearerAuth": []}],
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "ct-sync intake", "version": "1", "description": "Member events from Siebel Loyalty"},
        "paths": {EVENTS_PATH: {"post": operation}},
        "components": {
            "schemas": {"MemberEvent": request_schema, "IntakeMember": member_schema},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _openapi30(schema: Any) -> Any:
    """Fold JSON Schema 2020-12 (OpenAPI 3.1) into OpenAPI 3.0: `anyOf [X, null]` → X + `nullable`, no `const`."""
    if isinstance(schema, list):
        return [_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _openapi30(value) for key, value in schema.items() if key != "title" or isinstance(value, dict)}
    variants = schema.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [variant for variant in variants if variant != {"type": "null"}]
        schema.pop("anyOf")
        schema.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        schema["nullable"] = True
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    return schema
