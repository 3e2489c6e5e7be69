"""Redaction of secrets from text: the CrowdTwist API key travels in URLs, so every URL is suspect.

Used by the logging processor and by every adapter that puts a URL or a response excerpt into an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Query parameters and header values that carry credentials. Matching is case-insensitive and stops at the
# first character that cannot be part of the value, so the rest of a URL or sentence survives.
_SECRET_QUERY = re.compile(r"(?i)\b(api_key|apikey|access_token|token|password|secret)=([^&\s\"'<>#]+)")
_SECRET_SCHEMES = re.compile(r"(?i)\b(CTApiKey|Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]+):([^/@\s]+)@")

_SECRET_KEY = re.compile(r"(?i)(api_?key|password|passwd|secret|token|authorization|credential)")


def redact_text(text: str) -> str:
    """Remove credentials from free text: `api_key=…` in URLs, `user:pass@` in URLs, auth header values."""
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _SECRET_SCHEMES.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)


def is_secret_key(key: str) -> bool:
    """True for mapping keys named like a secret (`api_key`, `smtp_password`, `Authorization`, …)."""
    return bool(_SECRET_KEY.search(key))


def redact_value(value: Any) -> Any:
    """Redact strings, and recurse through mappings and sequences, dropping secret-named keys."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items() if not is_secret_key(str(key))}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value
