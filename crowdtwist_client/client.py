"""The CrowdTwist REST v2 client: member operations and the read endpoints, paced, retried, redacted.

The only module that speaks CrowdTwist HTTP. httpx errors are translated here, once, into `sync_worker.core.errors`;
messages never contain a URL, so the API key (which may travel in the query string) cannot leak through them. Nor do
they contain a value CrowdTwist answered: a user object that cannot be read names the field, never its content.

Requests go straight to an httpx transport (the connection pool), not through `httpx.Client`: the client's extras
are what this one must not do or does itself. Cookies: CrowdTwist's create answer sets session cookies, which a
shared client would send back on every later call, for every member (and parsing each answer's cookies to refuse
them cost an eighth of the worker's CPU); redirects are not followed; auth is the key, added here. Paths are the
ones Oracle's docs and captured calls use (the look-up ends with a slash, the update does not).

Retries (tenacity): transient failures only, exponential backoff with full jitter, bounded by attempts and time.
A write (`POST`, `PUT`, `DELETE`) is retried here only when the request provably never reached CrowdTwist (connect
errors, 429, 503). After a read timeout CrowdTwist may have applied it, and re-sending the same body later could
overwrite a newer state another worker sent meanwhile: the error goes up at once, marked `outcome_unknown`, and the
worker's next attempt reads the member afresh and sends what Siebel holds then.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog
import tenacity
from pydantic import ValidationError

from config.redaction import REDACTED, redact_text
from config.settings import CrowdTwistSettings
from crowdtwist_client.pacing import Pacer
from crowdtwist_client.responses import SYSTEM, decode, error_for, says_user_does_not_exist
from sync_worker.core.ct_user import CtUser, DeletionStatus, DeletionTicket, UserPayload, scrub_personal_data
from sync_worker.core.errors import ConfigurationError, CtSyncError, PermanentError, RateLimited, TransientError
from sync_worker.core.metering import record_call, record_pacing

log = structlog.get_logger("ct_sync.crowdtwist")

Observer = Callable[[str, int | None, float], None]  # operation, status code (None: no answer), seconds
_HEADERS = {"Accept": "application/json", "User-Agent": "ct-sync"}
_V21_PAGE_SIZE = 25
_REWARDS_PAGE_SIZE = 10
# What a privacy access export reads: path, page size (None: one unpaged answer), on the point-of-sale host.
SOURCES: dict[str, tuple[str, int | None, bool]] = {
    "activities": ("/v2/users/{ct_user_id}/activities", None, False),
    "activity_history": ("/v2.1/users/{ct_user_id}/activity_history", _V21_PAGE_SIZE, False),
    "rewards": ("/v2.1/users/{ct_user_id}/rewards", _REWARDS_PAGE_SIZE, False),
    "redemption_history": ("/v2.2/users/{ct_user_id}/redemption_history", _V21_PAGE_SIZE, False),
    # The receipts-history path is not documented beside the others (guess: the v2.1 pattern).
    "receipts": ("/v2.1/users/{ct_user_id}/receipts", _V21_PAGE_SIZE, False),
    "purchases": ("/users/{ct_user_id}/purchases", None, True),
}


class CrowdTwistClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        auth: str = "query",
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        pacer: Pacer | None = None,
        retry_attempts: int = 4,
        retry_max_time: float = 20.0,
        max_connections: int = 16,
        pos_base_url: str | None = None,
        deletion_status_path: str = "/v2/users/delete/{ct_user_id}",
        ca_bundle: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        pacing_observer: Callable[[float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self._auth = auth
        self._pacer = pacer
        self._retry_attempts = retry_attempts
        self._retry_max_time = retry_max_time
        self._deletion_status_path = deletion_status_path
        self._observer = observer
        self._pacing_observer = pacing_observer
        self._sleep = sleep
        self._base_url = base_url.rstrip("/")
        self._pos_base_url = (pos_base_url or base_url).rstrip("/")  # design: the base URL unless set
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout).as_dict()
        self._transport = transport or httpx.HTTPTransport(
            verify=ssl.create_default_context(cafile=ca_bundle)
            if ca_bundle
            else True,  # TLS is always verified; a private CA may be named
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    @classmethod
    def from_settings(
        cls,
        settings: CrowdTwistSettings,
        *,
        max_connections: int,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        pacing_observer: Callable[[float], None] | None = None,
        on_budget_sharing: Callable[[bool], None] = lambda shared: None,
    ) -> CrowdTwistClient:
        """A client as the settings say; with `budget_url`, its pacer shares one budget with every other process
        (`on_budget_sharing` hears when that budget is lost and found again)."""
        slots = None
        if settings.budget_url is not None:
            from crowdtwist_client.budget import RedisSlots  # only with the redis extra installed

            slots = RedisSlots(
                settings.budget_url,
                key=settings.budget_key,
                fallback_processes=settings.fallback_processes,
                on_sharing=on_budget_sharing,
            )
        return cls(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            auth=settings.auth,
            timeout=settings.timeout.total_seconds(),
            connect_timeout=settings.connect_timeout.total_seconds(),
            pacer=Pacer(settings.calls_per_minute, slots=slots),
            retry_attempts=settings.retry_attempts,
            retry_max_time=settings.retry_max_time.total_seconds(),
            max_connections=max_connections,
            pos_base_url=settings.pos_base_url,
            deletion_status_path=settings.deletion_status_path,
            ca_bundle=settings.ca_bundle,
            transport=transport,
            observer=observer,
            pacing_observer=pacing_observer,
        )

    def __repr__(self) -> str:
        return f"CrowdTwistClient(base_url={self._base_url!r}, auth={self._auth!r})"

    @property
    def pace_per_second(self) -> float | None:
        """The calls per second the pacer allows now (after any slowing by 429s); None when unpaced."""
        return self._pacer.rate_per_minute / 60.0 if self._pacer is not None else None

    def close(self) -> None:
        self._transport.close()
        if self._pacer is not None:
            self._pacer.close()

    def __enter__(self) -> CrowdTwistClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- members -----------------------------------------------------------------------------------------------

    def get_user(self, third_party_id: str) -> CtUser | None:
        return self.get_user_by(third_party_id, id_type="third_party_id")

    def get_user_by(
        self, value: str | int, *, id_type: str = "id", answered_as_crowdtwist: bool = False
    ) -> CtUser | None:
        # The trailing slash is the documented and captured form of "User Profile"; the sandbox serves both.
        path, query = f"/v2/users/{_segment(value)}/", {"id_type": id_type}
        document = self._call("get_user", "GET", path, params=query, answered_as_crowdtwist=answered_as_crowdtwist)
        return None if document is None else _user(document, operation="get_user")

    def identify(self, third_party_id: str) -> CtUser | None:
        """`get_user` for `ct-sync check`, which must not pass another server for CrowdTwist: a 404 means "no such
        user" only when it says so in CrowdTwist's error envelope. Any other 404 (the base URL names the intake, a
        metrics port, a path CrowdTwist does not serve) raises `ConfigurationError`."""
        return self.get_user_by(third_party_id, id_type="third_party_id", answered_as_crowdtwist=True)

    def create_user(self, payload: UserPayload) -> CtUser:
        document = self._call("create_user", "POST", "/v2/users", json=payload.body(), replayable=False)
        if document is None:  # a 404 on the collection itself: the base URL is wrong
            raise TransientError("CrowdTwist answered 404 to create: check the base URL", system=SYSTEM)
        return _user(document, operation="create_user")

    def update_user(self, third_party_id: str, payload: UserPayload) -> CtUser | None:
        path = f"/v2/users/{_segment(third_party_id)}"
        document = self._call(
            "update_user", "PUT", path, params={"id_type": "third_party_id"}, json=payload.body(), replayable=False
        )
        return None if document is None else _user(document, operation="update_user")

    def delete_user(self, value: str | int, *, id_type: str = "third_party_id") -> DeletionTicket | None:
        path = f"/v2/users/{_segment(value)}"
        document = self._call("delete_user", "DELETE", path, params={"id_type": id_type}, replayable=False)
        return None if document is None else DeletionTicket.model_validate(document)

    def deletion_status(self, ct_user_id: int) -> DeletionStatus | None:
        path = self._deletion_status_path.format(ct_user_id=ct_user_id)
        document = self._call("deletion_status", "GET", path)
        return None if document is None else DeletionStatus.model_validate(document)

    # -- read endpoints (privacy access requests) ---------------------------------------------------------------

    def user_document(self, value: str | int, *, id_type: str = "id") -> dict[str, Any] | None:
        """The whole user object as CrowdTwist answers it (an access export holds every field), or None (404)."""
        document = self._call("get_user", "GET", f"/v2/users/{_segment(value)}/", params={"id_type": id_type})
        if document is None:
            return None
        _user(document, operation="get_user")  # an answer without a readable id is no user object
        return dict(document)

    def read_source(self, source: str, ct_user_id: int) -> list[dict[str, Any]] | None:
        """Every item of one of `SOURCES` for this user, every page read; None when the endpoint answers 404 (not
        published on this tenant or host: the user itself was just found)."""
        path, page_size, on_pos_host = SOURCES[source]
        path = path.format(ct_user_id=ct_user_id)
        if page_size is None:
            base_url = self._pos_base_url if on_pos_host else None
            document = self._call(source, "GET", path, base_url=base_url, header_auth=on_pos_host)
            return None if document is None else _items(document)
        return self._pages(source, path, page_size)

    def _pages(self, operation: str, path: str, page_size: int) -> list[dict[str, Any]] | None:
        """Pages 1, 2, … until a short or empty one (a page past the end is an empty list: doc); None when the
        first page is a 404."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            document = self._call(operation, "GET", path, params={"page": page, "page_size": page_size})
            if document is None:
                return None if page == 1 else items
            found = _items(document)
            items += found
            if len(found) < page_size:
                return items
            page += 1

    # -- one call: pacing, retries, translation ------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        replayable: bool = True,
        base_url: str | None = None,
        header_auth: bool = False,
        answered_as_crowdtwist: bool = False,
    ) -> Any:
        """The decoded JSON answer, or None on 404 (with `answered_as_crowdtwist`, only CrowdTwist's own "User does
        not exist."). Raises the `sync_worker.core.errors` tree."""

        def retryable(exc: BaseException) -> bool:
            if not isinstance(exc, TransientError):
                return False
            return replayable or not exc.outcome_unknown

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retryable),
            stop=tenacity.stop_after_attempt(self._retry_attempts) | tenacity.stop_after_delay(self._retry_max_time),
            wait=_BackoffHonouringRetryAfter(),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(operation, state),
            reraise=True,
        )
        return retrying(
            self._send,
            operation,
            method,
            path,
            params=params,
            json=json,
            base_url=base_url or self._base_url,
            header_auth=header_auth,
            answered_as_crowdtwist=answered_as_crowdtwist,
        )

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        json: dict[str, Any] | None,
        base_url: str,
        header_auth: bool,
        answered_as_crowdtwist: bool = False,
    ) -> Any:
        query = dict(params or {})
        headers: dict[str, str] = {}
        if self._api_key:
            if header_auth or self._auth == "header":
                headers["X-CT-Authorization"] = f"CTApiKey {self._api_key}"
            else:
                query["api_key"] = self._api_key
        admission = self._pacer.acquire() if self._pacer is not None else None
        if admission is not None and admission.waited:
            record_pacing(admission.waited)
            if self._pacing_observer is not None:
                self._pacing_observer(admission.waited)
        record_call()
        started = time.monotonic()
        failure: TransientError | None = None
        try:
            response = self._exchange(method, base_url + path, params=query, json=json, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            failure = TransientError(self._describe(exc), system=SYSTEM, operation=operation)  # never sent
        except httpx.TransportError as exc:  # read/write timeouts, resets, protocol errors: sent, fate unknown
            failure = TransientError(self._describe(exc), system=SYSTEM, operation=operation, outcome_unknown=True)
        if failure is not None:
            # Raised outside the except block: the httpx exception, whose text may hold the URL, is not chained.
            self._observe(operation, None, started)
            raise failure
        self._observe(operation, response.status_code, started)
        error = error_for(response.status_code, response.headers, response.content, operation=operation)
        if self._pacer is not None and admission is not None:
            self._pacer.answered(admission, limited=isinstance(error, RateLimited))
        if error is not None:
            raise self._scrubbed(error, sent=json)
        if response.status_code == 404:
            if answered_as_crowdtwist and not says_user_does_not_exist(response.content):
                raise ConfigurationError(
                    f'{redact_text(base_url)} answered 404 without CrowdTwist\'s "User does not exist.": not '
                    "CrowdTwist's API (is CTSYNC_CROWDTWIST__BASE_URL its host root?)",
                    system=SYSTEM,
                    operation=operation,
                )
            return None
        return decode(response.content)  # JSON: error_for refused any other 2xx body

    def _exchange(
        self, method: str, url: str, *, params: dict[str, Any], json: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        """One request through the connection pool, its answer read whole."""
        request = httpx.Request(method, url, params=params, json=json, headers={**_HEADERS, **headers})
        request.extensions["timeout"] = self._timeout
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _describe(self, exc: httpx.HTTPError) -> str:
        detail = self._scrub(redact_text(str(exc))) or "no detail"
        return f"CrowdTwist unreachable: {type(exc).__name__}: {detail}"

    def _scrub(self, text: str) -> str:
        """CrowdTwist may echo the key back in a body; the client alone knows the key, so it removes it.
        (Real keys are long; a toy key of a few letters would shred ordinary words, so those are left.)"""
        return text.replace(self._api_key, REDACTED) if self._api_key and len(self._api_key) >= 8 else text

    def _scrubbed(self, error: CtSyncError, *, sent: dict[str, Any] | None) -> CtSyncError:
        """The key, and the member's own values CrowdTwist may echo back, out of the error's text."""
        scrubbed = self._scrub(error.message)
        if sent:
            scrubbed = scrub_personal_data(scrubbed, sent)
        if scrubbed != error.message:
            error.message = scrubbed
            error.args = (scrubbed,)
        return error

    def _observe(self, operation: str, status: int | None, started: float) -> None:
        if self._observer is not None:
            self._observer(operation, status, time.monotonic() - started)


class _BackoffHonouringRetryAfter(tenacity.wait.wait_base):
    """Full-jitter exponential backoff; CrowdTwist's Retry-After, when it sends one, instead."""

    def __init__(self) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=0.5, max=10)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, 60.0)
        return float(self._jitter(retry_state))


def _log_retry(operation: str, state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "crowdtwist_retry",
        operation=operation,
        attempt=state.attempt_number,
        status=getattr(error, "status_code", None),
        error=getattr(error, "message", type(error).__name__),
        wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
    )


def _user(document: Any, *, operation: str) -> CtUser:
    """The user object of an answer. Only `id` can make it unreadable; the error names it, never its value."""
    try:
        return CtUser.model_validate(document)
    except ValidationError as invalid:
        fields = sorted({".".join(str(part) for part in error["loc"]) for error in invalid.errors()})
    # Raised outside the except block: pydantic's error, which quotes the value, is neither chained nor context.
    what = "it is not a user object" if "" in fields else f"field {', '.join(fields)} is missing or invalid"
    raise PermanentError(
        f"CrowdTwist's answer to {operation} cannot be read: {what}", system=SYSTEM, operation=operation
    )


def _segment(value: str | int) -> str:
    """A path segment: Member Numbers may hold any character, so every one is percent-encoded."""
    return quote(str(value), safe="")


def _items(document: Any) -> list[dict[str, Any]]:
    """A list endpoint's items: CrowdTwist answers a bare list or an object holding one."""
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
    return []
