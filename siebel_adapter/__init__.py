"""The Siebel side: the member model, the `MemberStore` adapters (Siebel CRM REST, embedded SQLite), the intake
endpoint Siebel's workflow calls, the change poller, the event publisher, and an emulator of Siebel's REST API.

May import httpx, kombu, sqlite3, starlette/uvicorn, `config`, and from `sync_worker` only the pure modules
(`errors`, `messages`, `ports`). `member.py` is pure.
"""
