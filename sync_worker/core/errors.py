"""The exception tree of ct-sync. The class of an exception *is* the retry decision.

    CtSyncError
    ├── TransientError          retry: timeouts, connection errors, 5xx, 503 maintenance pages
    │   └── RateLimited         429 Too Many Requests (carries Retry-After when CrowdTwist sends one)
    ├── PermanentError          never retry the same input
    │   ├── InvalidEvent        undecodable / schema-violating queue message → dead-letter queue
    │   ├── DataRejected        CrowdTwist or our pre-check refused the member's data → "Data Error"
    │   │   ├── AlreadyExists   create refused because the third_party_id is taken → update instead
    │   │   └── InvalidRecord   the Siebel record itself cannot be read as a member (a malformed date)
    │   ├── NotAuthorized       401/403 from CrowdTwist or Siebel: configuration, not the member's fault
    │   └── MemberNotFound      the store has no member with that Member Number
    └── ConfigurationError      a setting points at something that does not exist (wrong business object)
        └── UnknownField        a search names a field the member store does not have (the nearest one named)

Adapters translate third-party exceptions into this tree once, at their boundary (`raise ... from exc`); nothing
above an adapter catches `httpx.*`, `amqp.*` or `sqlalchemy.*`. Messages never contain URLs with credentials:
adapters pass URLs through `config.redaction.redact_text` first. This module imports nothing but the stdlib, so
every package may import it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# The `system` of a failure that is a bug in ct-sync itself (outside the tree): never blamed on another system.
INTERNAL = "ct-sync"


class CtSyncError(Exception):
    """Root of every error ct-sync raises on purpose."""

    def __init__(self, message: str, *, system: str = "", operation: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system  # "crowdtwist", "siebel", "broker", "smtp", ...
        self.operation = operation  # "create_user", "write_outcome", ...
        self.status_code = status_code


class TransientError(CtSyncError):
    """The other side may answer differently later: retry with backoff.

    `outcome_unknown`: the request reached the other side and no verdict came back (a read timeout, a reset, a 5xx
    other than 503): a write may or may not have been applied."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        operation: str = "",
        status_code: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, system=system, operation=operation, status_code=status_code)
        self.outcome_unknown = outcome_unknown


class RateLimited(TransientError):
    """429: slow down. `retry_after` is in seconds when the server said so."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, system: str = "", operation: str = ""
    ) -> None:
        super().__init__(message, system=system, operation=operation, status_code=429)
        self.retry_after = retry_after


class PermanentError(CtSyncError):
    """Retrying the same input cannot help."""


class InvalidEvent(PermanentError):
    """A queue message or intake body that cannot be decoded or violates the schema."""


class DataRejected(PermanentError):
    """The member's data is refused; `message` is what the Siebel admin reads (CrowdTwist's text verbatim)."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        system: str = "",
        operation: str = "",
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, system=system, operation=operation, status_code=status_code)
        self.field = field


class AlreadyExists(DataRejected):
    """Create refused because CrowdTwist already has a user with this third_party_id."""


class InvalidRecord(DataRejected):
    """A Siebel record that is not a valid member. Says where to write the Data Error (`row_id`), whose it is (the
    Member Number, when that much is readable), its current CT Sync Status, and a fingerprint of its member fields,
    so an unchanged bad record is not written and alerted again every time it comes round."""

    def __init__(
        self,
        message: str,
        *,
        row_id: str,
        member_number: str | None = None,
        fingerprint: str = "",
        sync_status: str | None = None,
    ) -> None:
        super().__init__(message, system="siebel", operation="get_member")
        self.row_id = row_id
        self.member_number = member_number
        self.fingerprint = fingerprint
        self.sync_status = sync_status


class NotAuthorized(PermanentError):
    """Credentials refused (401/403): pause and alert, the member is not at fault."""


class MemberNotFound(PermanentError):
    """No member with that Member Number in the store."""


class ConfigurationError(CtSyncError):
    """A setting names something the other system does not know (business object, field, host)."""


class UnknownField(ConfigurationError):
    """A condition names a field the member store does not have: Siebel refuses such a searchspec, and the stand-in
    must not answer it with nothing. `nearest` is the known field closest to it, when one is close."""

    def __init__(self, field: str, *, known: Iterable[str], where: str, system: str = "siebel") -> None:
        self.field = field
        self.nearest = nearest_name(field, known)
        hint = f" (the nearest: {self.nearest!r})" if self.nearest else ""
        super().__init__(f"{where} has no field {field!r}{hint}", system=system)


def nearest_name(given: str, names: Iterable[str]) -> str | None:
    """The name among `names` closest to `given`, case ignored, for a "did you mean"; None when none is close."""
    by_folded = {name.casefold(): name for name in names}
    found = difflib.get_close_matches(given.casefold(), list(by_folded), n=1)
    return by_folded[found[0]] if found else None


def outage_text(error: CtSyncError) -> str:
    """What an outage is called in one line: the error's own words when they already say which system is out
    ("Siebel unreachable at …", "ledger unavailable: …"), else "<system> unreachable: <message>", never both."""
    if says_outage(error.message):
        return error.message
    return f"{error.system or 'a system'} unreachable: {error.message}"


def says_outage(message: str) -> bool:
    """Whether a message already names the outage ("… unreachable …", "… unavailable …")."""
    words = message.casefold()
    return "unreachable" in words or "unavailable" in words
