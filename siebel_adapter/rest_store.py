"""Adapter: Siebel CRM REST (`/siebel/v1.0/data/{BusObj}/{BusComp}`), the production member store.

Reads with `searchspec` (every value quoted by `searchspec.quote`, never pasted), `uniformresponse=yes`, and
pages until a short one (Siebel gives no total). Pages are read by key, never by offset (`StartRowNum` stays 0):
Siebel bumps Updated on every write and our write-backs move members out of a status, so rows shift while a long
read goes on, and an offset would skip some. Writes the outcome with a PUT by row id, which Siebel treats as an
idempotent upsert. Outages are `TransientError`s; a refused login or an unknown business
object/component is a `ConfigurationError`, because retrying cannot fix either.

Every error names the base URL (redacted) and tells three wrong settings apart by the shape of the answer. Siebel
answers its errors as `{"ERROR": "…"}` (and pages as `{"items": […]}`), so a 401/403/404 in that envelope is
Siebel refusing the credentials or not knowing the business object; the same codes with any other body (an HTML
page, another API's JSON) come from a server that is not Siebel's REST API at all. A searchspec naming a field the
business component lacks is refused by Siebel (SBL-DAT-00398), never answered empty: that is `UnknownField`, with
the nearest of the fields a record of the component holds.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote as quote_path

import httpx

from config.redaction import redact_text
from config.settings import SiebelSettings
from siebel_adapter import searchspec
from sync_worker.core.errors import (
    ConfigurationError,
    CtSyncError,
    InvalidRecord,
    PermanentError,
    TransientError,
    UnknownField,
)
from sync_worker.core.member import (
    MEMBER_NUMBER,
    ROW_ID,
    UPDATED,
    Member,
    SyncOutcome,
    fit_text,
    member_from_record,
    member_or_invalid,
    parse_siebel_datetime,
)
from sync_worker.core.ports import ChangeCursor, ChangePage

SYSTEM = "siebel"
Key = TypeVar("Key")
# Siebel answers 404 both for "no record matched" and for a wrong object name; only the text tells them apart.
_NO_DATA = "no data"
_NO_DATA_WORDS = "there is no data for the requested resource"
_EXCERPT = 200  # of Siebel's own words in an error: enough for its reason, short of any record it may echo
# Siebel's words for a field the business component does not have (SBL-DAT-00398), whatever the HTTP status.
_NO_SUCH_FIELD = re.compile(r"Field '([^']*)' does not exist in definition for business component", re.IGNORECASE)


class SiebelRestStore:
    def __init__(
        self,
        settings: SiebelSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        on_call: Callable[[str], None] = lambda kind: None,
    ) -> None:
        """`on_call` hears each request Siebel answers to, "read" or "write" (Siebel is the guarded system)."""
        self._on_call = on_call
        if settings.base_url is None:
            raise ConfigurationError("CTSYNC_SIEBEL__BASE_URL is required for the rest backend", system=SYSTEM)
        self._settings = settings
        auth: httpx.Auth | None = None
        headers = {"Accept": "application/json"}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        elif settings.username and settings.password:
            auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
        self._where = redact_text(settings.base_url)
        self._collection = (
            f"{settings.base_url}/data/{quote_path(settings.business_object, safe='')}"
            f"/{quote_path(settings.business_component, safe='')}"
        )
        self._http = httpx.Client(
            auth=auth,
            headers=headers,
            timeout=settings.timeout.total_seconds(),
            transport=transport,
            verify=ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True,
        )

    def close(self) -> None:
        self._http.close()

    # -- the MemberStore port -----------------------------------------------------------------------------------

    def get_member(self, member_number: str) -> Member | None:
        items = self._query(searchspec.field_is(MEMBER_NUMBER, member_number), start=0, size=2)
        return self._member(items[0]) if items else None

    def write_outcome(self, row_id: str, outcome: SyncOutcome) -> None:
        fields = {
            self._settings.status_field: str(outcome.status),
            self._settings.error_field: fit_text(outcome.error or "", self._settings.error_field_length),
            self._settings.sync_time_field: outcome.at.astimezone(UTC).strftime(searchspec.SIEBEL_DATETIME),
        }
        if outcome.ct_user_id is not None:
            fields[self._settings.ct_user_id_field] = str(outcome.ct_user_id)
        self._request("PUT", f"{self._collection}/{quote_path(row_id, safe='')}", json=fields)

    def find_by_status(
        self, statuses: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Member]:
        time_field = self._settings.sync_time_field
        spec = searchspec.all_of(
            searchspec.any_of(self._settings.status_field, statuses),
            searchspec.compare(time_field, ">=", since) if since else "",
            searchspec.compare(time_field, "<", until) if until else "",
        )
        pages = self._keyset_pages(
            lambda last_id: searchspec.all_of(spec, searchspec.compare(ROW_ID, ">", last_id) if last_id else ""),
            start=None,
            sort=f"{ROW_ID}:ASC",
            key=lambda item: str(item[ROW_ID]),
        )
        for items in pages:
            yield from (self._member(item) for item in items)

    def changed_after(self, cursor: ChangeCursor | None) -> Iterator[ChangePage]:
        pages = self._keyset_pages(
            lambda last: searchspec.after_key(UPDATED, last.updated, ROW_ID, last.row_id) if last else "",
            start=cursor,
            sort=f"{UPDATED}:ASC,{ROW_ID}:ASC",
            key=_key,
        )
        for items in pages:
            yield ChangePage(items=[member_or_invalid(item, self._member) for item in items], last=_key(items[-1]))

    def count_changed_after(self, cursor: ChangeCursor | None) -> int | None:
        """Siebel counts when asked (`recordcountneeded=true`: the `Total-Record-Count` header of a one-record page);
        None when the answer carries no count."""
        params: dict[str, Any] = {"uniformresponse": "yes", "PageSize": 1, "recordcountneeded": "true"}
        if cursor is not None:
            params["searchspec"] = searchspec.after_key(UPDATED, cursor.updated, ROW_ID, cursor.row_id)
        response = self._send("GET", self._collection, params=params)
        if _no_data(response):
            return 0
        total = response.headers.get("Total-Record-Count", "")
        return int(total) if total.isdigit() else None

    def field_names(self) -> frozenset[str]:
        """The fields one record of the business component holds (Siebel answers every active field when `fields=`
        is not given) and the configured write-back fields; empty when no record can be read."""
        try:
            items = self._query("", start=0, size=1)
        except CtSyncError:
            items = []
        held = {name for item in items for name in item if name != "Link"}
        return frozenset({*held, ROW_ID, MEMBER_NUMBER, UPDATED, *self._settings.write_back_fields})

    def find_matching(self, conditions: Sequence[tuple[str, str]]) -> Iterator[Member | InvalidRecord]:
        spec = searchspec.all_of(*(searchspec.field_is(field, value) for field, value in conditions))
        sort = f"{MEMBER_NUMBER}:ASC"
        start, size = 0, self._settings.page_size
        while True:
            items = self._query(spec, start=start, size=size, sort=sort)
            for item in items:
                yield member_or_invalid(item, self._member)
            if len(items) < size:
                return
            start += size

    # -- HTTP --------------------------------------------------------------------------------------------------------

    def _keyset_pages(
        self,
        spec: Callable[[Key | None], str],
        *,
        start: Key | None,
        sort: str,
        key: Callable[[dict[str, Any]], Key],
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages in `sort` order, each asking for the records after the last one read, until a short page."""
        size = self._settings.page_size
        last = start
        while True:
            items = self._query(spec(last), start=0, size=size, sort=sort)
            if items:
                yield items
            if len(items) < size:
                return
            last = key(items[-1])

    def _query(self, spec: str, *, start: int, size: int, sort: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"uniformresponse": "yes", "PageSize": size, "StartRowNum": start}
        if spec:
            params["searchspec"] = spec
        if sort:
            params["sortspec"] = sort
        document = self._request("GET", self._collection, params=params)
        items = document.get("items") if isinstance(document, dict) else None
        if not isinstance(items, list):  # with uniformresponse=yes, Siebel's every page is {"items": […]}
            raise ConfigurationError(
                f'{self._where} answered a query with JSON that is not Siebel\'s ({{"items": …}} expected): '
                f"{_NOT_SIEBEL_HINT}",
                system=SYSTEM,
            )
        return [item for item in items if isinstance(item, dict)]

    def _request(self, method: str, url: str, **options: Any) -> Any:
        response = self._send(method, url, **options)
        if _no_data(response):
            return {"items": []}
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:  # a gateway's login or error page in front of Siebel, answered 200
            raise TransientError(
                f"Siebel at {self._where} answered HTTP {response.status_code} with a page that is not JSON "
                "(a gateway's login page?)",
                system=SYSTEM,
            ) from None

    def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """The answer, or the error it means (404 "no data" is an answer: an empty result)."""
        self._on_call("read" if method == "GET" else "write")
        failure: TransientError | None = None
        try:
            response = self._http.request(method, url, **options)
        except httpx.TransportError as exc:
            detail = redact_text(str(exc).strip())
            cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            failure = TransientError(f"Siebel unreachable at {self._where}: {cause}", system=SYSTEM)
        if failure is not None:
            raise failure  # outside the except block: the httpx error (and its URL) is not chained
        status = response.status_code
        if status < 400 or _no_data(response):
            return response
        said = _siebel_error(response)
        field = _NO_SUCH_FIELD.search(said or "")
        if field is not None:
            where = f"Siebel's {self._settings.business_component} at {self._where}"
            raise UnknownField(field.group(1), known=self.field_names(), where=where)
        if status in (401, 403, 404) and said is None and response.content:
            raise ConfigurationError(self._not_siebel(response), system=SYSTEM, status_code=status)
        answer = f"HTTP {status}: {redact_text(said[:_EXCERPT])}" if said else f"HTTP {status}"
        if status in (401, 403):
            raise ConfigurationError(
                f"Siebel at {self._where} refused the credentials ({answer}): check {self._credential_settings()}",
                system=SYSTEM,
                status_code=status,
            )
        if status == 404:
            raise ConfigurationError(
                f"Siebel at {self._where} does not know business object {self._settings.business_object!r} / "
                f"component {self._settings.business_component!r} ({answer}): check "
                "CTSYNC_SIEBEL__BUSINESS_OBJECT and __BUSINESS_COMPONENT",
                system=SYSTEM,
                status_code=status,
            )
        if status >= 500 or status == 429:
            raise TransientError(f"Siebel unavailable at {self._where}: {answer}", system=SYSTEM, status_code=status)
        if status >= 400:  # a field too long, a validation rule: the same request will be refused again
            detail = redact_text((said or response.text)[:_EXCERPT])
            raise PermanentError(
                f"Siebel refused the request (HTTP {status}): {detail}", system=SYSTEM, status_code=status
            )
        return response

    def _not_siebel(self, response: httpx.Response) -> str:
        """The words for a 401/403/404 without Siebel's `{"ERROR": …}`: another server answered."""
        body = response.content.lstrip()[:1]
        what = "an HTML page" if body == b"<" else "JSON that is not Siebel's" if body in (b"{", b"[") else "text"
        status = response.status_code
        login = " (or a proxy in front of Siebel refused the login)" if status in (401, 403) else ""
        return (
            f'{self._where} answered HTTP {status} with {what}, not Siebel\'s {{"ERROR": …}}{login}: {_NOT_SIEBEL_HINT}'
        )

    def _credential_settings(self) -> str:
        if self._settings.bearer_token is not None:
            return "CTSYNC_SIEBEL__BEARER_TOKEN"
        if self._settings.username and self._settings.password:
            return "CTSYNC_SIEBEL__USERNAME and __PASSWORD"
        return "CTSYNC_SIEBEL__USERNAME and __PASSWORD (none was sent)"

    def _member(self, item: dict[str, Any]) -> Member:
        return member_from_record(
            item, ct_user_id_field=self._settings.ct_user_id_field, status_field=self._settings.status_field
        )


_NOT_SIEBEL_HINT = "not Siebel's REST API (is CTSYNC_SIEBEL__BASE_URL Siebel's, up to and including /siebel/v1.0?)"


def _siebel_error(response: httpx.Response) -> str | None:
    """The message of Siebel's error envelope `{"ERROR": "…"}`; None when the answer has no such envelope."""
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    message = document.get("ERROR") if isinstance(document, dict) else None
    return message if isinstance(message, str) else None


def _no_data(response: httpx.Response) -> bool:
    """Siebel's "There is no data for the requested resource": an empty result. In its envelope, or (should a
    deployment answer it as text) in its exact words; another server's 404 page is not an empty result."""
    if response.status_code != 404:
        return False
    said = _siebel_error(response)
    if said is not None:
        return _NO_DATA in said.lower()
    return _NO_DATA_WORDS in response.text.lower() and not response.text.lstrip().startswith("<")


def _key(item: dict[str, Any]) -> ChangeCursor:
    """Where a record stands in the change order. Updated and Id are Siebel's own system fields."""
    updated = parse_siebel_datetime(item.get(UPDATED))
    if not isinstance(updated, datetime) or not item.get(ROW_ID):
        raise ConfigurationError(f"Siebel answered a record without a readable {UPDATED} or {ROW_ID}", system=SYSTEM)
    return ChangeCursor(updated, str(item[ROW_ID]))
