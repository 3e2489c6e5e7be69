"""The settings guide is generated from the Settings tree: every setting documented, the file never stale."""

from __future__ import annotations

from pathlib import Path

from config.reference import settings_reference
from config.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "settings.md"


def test_every_setting_has_a_meaning() -> None:
    for section in Settings.model_fields.values():
        model = section.annotation
        fields = getattr(model, "model_fields", {"": section})
        for name, field in fields.items():
            assert field.description, f"{model.__name__ if name else 'Settings'}.{name} has no description"


def test_docs_settings_md_is_current() -> None:
    assert DOC.read_text() == settings_reference(), "run: python -m config.reference > docs/settings.md"
