"""The CrowdTwist user as read from an answer: `id` strict, every other field lenient (Oracle changes types)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sync_worker.core.ct_user import CtUser


@pytest.mark.parametrize(
    ("field", "answered", "read"),
    [
        ("third_party_id", 2962185770, "2962185770"),
        ("third_party_id", "", None),
        ("first_name", ["Ann"], None),
        ("gender_id", "2", 2),
        ("gender_id", "", None),
        ("date_of_birth", "1985-02-03", None),
        ("date_of_birth", 344754000.0, 344754000),
        ("city_id", True, 1),
        ("is_active", True, True),
        ("is_active", 0, False),
        ("is_active", "1", True),
        ("is_active", "yes", None),
        ("total_points", {"points": 3}, None),
    ],
)
def test_a_field_of_an_unexpected_type_is_read_leniently(field: str, answered: Any, read: Any) -> None:
    assert getattr(CtUser.model_validate({"id": 7, field: answered}), field) == read


@pytest.mark.parametrize("answered", [{}, {"id": "7"}, {"id": True}, {"id": 7.5}, {"id": 0}, {"id": None}])
def test_the_id_is_read_strictly(answered: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CtUser.model_validate(answered)


def test_fields_crowdtwist_adds_are_ignored() -> None:
    assert CtUser.model_validate({"id": 7, "fan_level": "Bronze", "tier_info": {"x": 1}}).id == 7
