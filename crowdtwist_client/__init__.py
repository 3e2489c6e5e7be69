"""CrowdTwist REST v2: the client, its models, response-to-error mapping, pacing, and the local sandbox emulator.

The only package that speaks CrowdTwist HTTP. May import httpx, tenacity, pydantic, `config` and
`sync_worker.core.errors` (the shared error tree); never kombu, the store or the worker.
"""
