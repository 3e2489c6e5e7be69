"""The sandbox: stand-ins for the systems ct-sync talks to, to rehearse on and to test against.

    crowdtwist/   an emulator of CrowdTwist's REST API v2, shaped by Oracle's captured calls and its docs
    siebel/       an emulator of Siebel's REST member endpoints over the SQLite stand-in, and its searchspec reader
    sftp.py       an in-process SFTP server standing in for CrowdTwist's drop folder
    servers.py    the emulators served over real HTTP on 127.0.0.1, on a background thread

Shipped, because `ct-sync demo` and `ct-sync sandbox` are features; but imported only by those rehearsal commands,
the tests and the benchmarks (an import contract in pyproject.toml says so): production code never reaches it.
It imports the adapters it stands beside (the SQLite stand-in), the core, `config` and `sync_worker.http`.
"""
