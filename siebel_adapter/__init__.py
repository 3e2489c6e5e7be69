"""The Siebel side: the `MemberStore` adapters (Siebel CRM REST, embedded SQLite stand-in) and the `searchspec`
writer: the only code that speaks Siebel's REST dialect, and an emulator of Siebel's REST API.

An adapter: imports httpx, sqlite3, starlette, `config`, and of ours only `sync_worker.core`. The member model it
reads into lives in the core (`sync_worker.core.member`).
"""
