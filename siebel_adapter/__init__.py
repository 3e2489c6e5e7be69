"""The Siebel side: the `MemberStore` adapters (Siebel CRM REST, embedded SQLite stand-in), the intake endpoint
Siebel's workflow calls, the change poller, the queue (topology, publisher, the embedded transport, dead letters),
and an emulator of Siebel's REST API.

An adapter: imports httpx, kombu, sqlite3, starlette, `config`, and of ours only `sync_worker.core`. The member
model it reads into lives in the core (`sync_worker.core.member`); the intake and the emulator are ASGI apps that
`sync_worker.http` serves.
"""
