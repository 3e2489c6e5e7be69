"""What a test does when something it needs is missing here: skip, saying what, on a developer's machine; fail in CI,
where a missing service must never look like a pass (dramatiq's `check_rabbitmq` idea)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run every test")
    pytest.skip(reason)
