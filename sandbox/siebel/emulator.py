"""A local emulator of Siebel's REST member endpoints, over the SQLite stand-in, so the REST adapter is exercised
over real HTTP (tests, `ct-sync demo --with-rest`, `ct-sync sandbox`).

    GET /siebel/v1.0/data/{BusObj}/{BusComp}?searchspec=…&PageSize=…&StartRowNum=…&sortspec=…&uniformresponse=yes
    GET /siebel/v1.0/data/{BusObj}/{BusComp}/{Id}
    PUT /siebel/v1.0/data/{BusObj}/{BusComp}/{Id}       flat JSON of field names; bumps Updated, as Siebel does

Basic auth; 404 "There is no data for the requested resource" for an empty result, as Siebel answers; a
searchspec naming a field the records do not hold is refused as Siebel refuses it (HTTP 500, SBL-DAT-00398),
never answered as an empty result; switches: `down` answers 503, `latency` delays every answer, `refused_writes`
refuses a row's PUT, `fail_reads` answers the next N queries of the collection (a poll's page, a look-up) 500
(`failed_reads` counts them). The searchspec is parsed (`sandbox.siebel.search`), never evaluated as text;
`sortspec` takes several keys (`Updated:ASC,Id:ASC`);
`recordcountneeded=true` adds the `Total-Record-Count` header. As unkind as Siebel: `Updated` is answered to the
second in Siebel's `MM/DD/YYYY HH:MM:SS`, so many rows share one stamp, and every write (the worker's write-back
too) moves a row to the end of the change order while a reader pages through it.

A page is read from an index range, as a database would: the bounds the searchspec puts on `Updated`, `Id` and
`Member Number` (a keyset page, a look-up) narrow the rows read, ordered by the index when the sortspec names those
fields, and reading stops once the page is full; the full searchspec is still applied to every row read. So a
look-up costs one row, not a scan of the program (a scan capped the emulator at 18 members/s at 20,000 members).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import itertools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.siebel import search
from siebel_adapter import searchspec
from siebel_adapter.sqlite_store import SqliteMemberStore, stamp_of
from sync_worker.core.member import MEMBER_NUMBER, ROW_ID, UPDATED, parse_siebel_datetime

BASE_PATH = "/siebel/v1.0"  # what the base-URL setting ends with
PREFIX = BASE_PATH + "/data"
NO_DATA = {"ERROR": "There is no data for the requested resource"}
_MAX_PAGE = 100
# The fields the stand-in keeps in indexed columns, and how a searchspec value compares with the column's.
_INDEXED: dict[str, tuple[str, Callable[[str], str | None]]] = {
    UPDATED: ("updated", stamp_of),
    ROW_ID: ("row_id", lambda value: value),
    MEMBER_NUMBER: ("member_number", lambda value: value),
}


class SiebelEmulator:
    def __init__(
        self,
        store: SqliteMemberStore,
        *,
        username: str,
        password: str,
        business_object: str = "LOY Member",
        business_component: str = "LOY Member",
    ) -> None:
        self.store = store
        self.down = False
        self.latency = 0.0  # seconds every answer takes, as a loaded Siebel's do (awaited: others are not held up)
        self.refused_writes: dict[str, int] = {}  # row id → the status Siebel answers a PUT with (a locked record)
        self.fail_reads = 0  # the next queries of the collection to answer 500, as an overloaded Siebel does
        self.failed_reads = 0
        self.requests = 0
        self._known_fields: set[str] = set()
        self._credentials = f"{username}:{password}".encode()
        self._object = (business_object, business_component)
        collection = PREFIX + "/{business_object}/{business_component}"
        self.app = Starlette(
            routes=[
                Route(collection, self._query, methods=["GET"]),
                Route(collection + "/{row_id}", self._one, methods=["GET", "PUT"]),
            ]
        )

    async def _query(self, request: Request) -> Response:
        refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        if self.fail_reads > 0:  # one event loop serves every request: no two can take the same failure
            self.fail_reads -= 1
            self.failed_reads += 1
            return JSONResponse({"ERROR": "Internal Server Error"}, status_code=500)
        params = request.query_params
        try:
            tree = search.parse_tree(params["searchspec"]) if params.get("searchspec") else None
        except search.SearchspecError as exc:
            return JSONResponse({"ERROR": f"Invalid search specification: {exc}"}, status_code=400)
        unknown = next((field for field in search.fields(tree) if not self._knows(field)), None) if tree else None
        if unknown is not None:
            return JSONResponse({"ERROR": _no_such_field(unknown, self._object[1])}, status_code=500)
        size = min(int(params.get("PageSize", "10")), _MAX_PAGE)
        start = int(params.get("StartRowNum", "0"))
        sort = [
            (field.strip(), direction.upper() == "DESC")
            for field, _, direction in (part.partition(":") for part in params.get("sortspec", "").split(","))
            if field.strip()
        ] or [(MEMBER_NUMBER, False)]  # Siebel's order when none is asked for: the stand-in's own
        matches = search.predicate(tree) if tree is not None else (lambda record: True)
        bounds = _index_range(tree)
        if all(field in _INDEXED for field, _ in sort):
            order = [(_INDEXED[field][0], descending) for field, descending in sort]
            with contextlib.closing(self.store.scan(**bounds, order=order)) as rows:
                page = list(itertools.islice((row for row in rows if matches(row)), start, start + size))
        else:  # a sort on a plain field: every row of the range, sorted here
            records = [row for row in self.store.scan(**bounds) if matches(row)]
            # sortspec "Field1:ASC,Field2:DESC": apply the keys last to first (Python's sort is stable).
            for field, descending in reversed(sort):
                records.sort(key=lambda document: _sort_key(document.get(field)), reverse=descending)
            page = records[start : start + size]
        counted = {}
        if params.get("recordcountneeded") == "true":  # Siebel counts only when asked
            with contextlib.closing(self.store.scan(**bounds)) as rows:
                counted = {"Total-Record-Count": str(sum(1 for row in rows if matches(row)))}
        if not page:
            return JSONResponse(NO_DATA, status_code=404, headers=counted)
        return JSONResponse({"items": [_item(document, request) for document in page]}, headers=counted)

    async def _one(self, request: Request) -> Response:
        refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        row_id = unquote(request.path_params["row_id"])
        if request.method == "PUT" and row_id in self.refused_writes:
            return JSONResponse(
                {"ERROR": "Access denied: the record is read-only"}, status_code=self.refused_writes[row_id]
            )
        if request.method == "PUT":
            try:
                changes = json.loads(await request.body())
            except ValueError:
                return JSONResponse({"ERROR": "body is not JSON"}, status_code=400)
            if not isinstance(changes, dict) or not all(isinstance(v, str) for v in changes.values()):
                return JSONResponse({"ERROR": "body must be a flat object of field values"}, status_code=400)
            self.store.update_fields(row_id, changes)
            return JSONResponse({"items": {ROW_ID: row_id}})
        with contextlib.closing(self.store.scan(where=[("row_id", "=", row_id)])) as rows:
            record = next(rows, None)
        return JSONResponse({"items": [_item(record, request)]}) if record else JSONResponse(NO_DATA, status_code=404)

    def _knows(self, field: str) -> bool:
        """Whether the business component has `field`: the fields the stand-in's records hold (remembered once
        seen, so the fields of every page's searchspec cost nothing after the first)."""
        if field not in self._known_fields and self.store.has_field(field):
            self._known_fields.add(field)
        return field in self._known_fields

    async def _admit(self, request: Request) -> Response | None:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._refusal(request)

    def _refusal(self, request: Request) -> Response | None:
        self.requests += 1
        if self.down:
            return JSONResponse({"ERROR": "Service Unavailable"}, status_code=503)
        if not self._authorized(request.headers.get("authorization", "")):
            return JSONResponse({"ERROR": "Unauthorized"}, status_code=401)
        names = (request.path_params["business_object"], request.path_params["business_component"])
        if names != self._object:
            return JSONResponse({"ERROR": f"Business object {names[0]!r} is not available"}, status_code=404)
        return None

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded, validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self._credentials)


def _no_such_field(field: str, business_component: str) -> str:
    """Siebel's words (SBL-DAT-00398) for a searchspec naming a field the business component lacks."""
    return (
        f"Field '{field}' does not exist in definition for business component '{business_component}'. Please ask "
        "your systems administrator to check your application configuration.(SBL-DAT-00398)"
    )


def _index_range(tree: search.Node | None) -> dict[str, Any]:
    """What the searchspec implies for the indexed columns (`SqliteMemberStore.scan`'s bounds): every row it matches
    lies in this range. A keyset page's "after (Updated, Id)" is one bound on the pair, as `changed_after` reads."""
    if tree is None:
        return {}
    where = []
    for field, (column, comparable) in _INDEXED.items():
        bound = search.lower_bound(tree, field, normalise=comparable)
        if bound is not None:
            where.append((column, *bound))
    key = search.key_after(tree, UPDATED, ROW_ID)
    stamp = stamp_of(key[0]) if key is not None else None
    return {"where": where, "after_change": (stamp, key[1]) if key is not None and stamp is not None else None}


def _item(document: dict[str, Any], request: Request) -> dict[str, Any]:
    """A record as Siebel answers it: system stamps in its own `MM/DD/YYYY HH:MM:SS`, a self link."""
    link = {"rel": "self", "href": f"{request.url.path}/{document.get(ROW_ID)}", "name": "LOY Member"}
    updated = parse_siebel_datetime(document.get(UPDATED))
    stamp = updated.strftime(searchspec.SIEBEL_DATETIME) if isinstance(updated, datetime) else document.get(UPDATED)
    return {**document, UPDATED: stamp, "Link": [link]}


def _sort_key(value: Any) -> Any:
    moment = parse_siebel_datetime(value)
    return (0, moment.timestamp()) if hasattr(moment, "timestamp") else (1, str(value or ""))
