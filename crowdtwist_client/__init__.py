"""CrowdTwist REST v2: the client (pacing, retries, redaction, the status-to-error table) and the shared budget;
CrowdTwist's drop folder for segment files (`drop/`: SFTP with paramiko, or a local folder).

The only package that speaks CrowdTwist HTTP, and SSH. An adapter: imports httpx, tenacity, pydantic, paramiko,
`config` and of ours only `sync_worker.core` (the error tree, the user types, the call meter); never the worker, the
store or kombu. Its emulator lives in the top-level `sandbox` package.
"""
