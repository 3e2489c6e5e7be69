"""The sync itself: the pure core (mapping, pre-check, retry decisions, the use case), the kombu consumer, the
ledger, alerts, resubmit, metrics and the `ct-sync` CLI.

The core modules (`errors`, `messages`, `ports`, `mapping`, `decisions`, `sync`) import no I/O library: no httpx,
kombu, sqlite3 or SQLAlchemy. Adapters and entrypoints around them do.
"""
