"""CrowdTwist REST v2: the client (pacing, retries, redaction, the status-to-error table) and the local sandbox
emulator of the API; CrowdTwist's drop folder for segment files (`drop/`: SFTP with paramiko, or a local folder)
and the sandbox's in-process SFTP server.

The only package that speaks CrowdTwist HTTP, and SSH. An adapter: imports httpx, tenacity, pydantic, `config` and of
ours only `sync_worker.core` (the error tree, the user types, the call meter); never the worker, the store or
kombu. The sandbox builds an ASGI app; `sync_worker.http` serves it.
"""
