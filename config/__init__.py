"""Configuration: the one `Settings` tree (jobs and groups included), durations and schedules (croniter), logging
setup and redaction.

May import pydantic, pydantic-settings, croniter and structlog; never the project's other packages.
Nothing here reads the environment at import time: the entrypoint calls `load_settings()` once.
"""

from __future__ import annotations

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
