"""The user object as CrowdTwist answers it: every key of the captured "User Profile" answer, in its order, with its
types (booleans `true`/`false`, `gender_id` a string, `country`/`state`/`city` rather than the codes sent, a
`tier_info` object), rendered from the fields the sandbox stores. Keys the sandbox has no value for are `null`, as
in the real answers. What is inferred rather than captured comes from `guesses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.crowdtwist import guesses
from sandbox.crowdtwist.answers import iso_time

# Every key of the captured profile answer whose value the sandbox never has: always null, as for most members.
_ALWAYS_NULL = (
    "extra_data", "us_region", "ca_province", "state", "street_address_1", "street_address_2",
    "date_receive_email_opt_in", "date_receive_email_opt_out", "facebook_access_token", "facebook_user_id",
    "date_fb_token_expires", "twitter_oauth_token", "twitter_oauth_token_secret", "pinterest_access_token",
    "pinterest_user_id", "inst_access_token", "inst_username", "inst_user_id", "store_id", "date_last_login", "rank",
    "weekly_rank", "monthly_rank", "password", "salt", "household_id",
)  # fmt: skip
# Keys answered exactly as stored.
_STORED_AS_IS = (
    "id", "first_name", "middle_name", "last_name", "date_of_birth", "email_address", "username",
    "mobile_phone_number", "third_party_id", "postal_code", "total_points", "redeemable_points", "date_last_updated",
    "date_created", "lang_pref",
)  # fmt: skip
# The captured key order (Oracle's JSON encoder keeps it; a reader should not care, but a diff of two answers does).
KEYS = (
    "id", "first_name", "middle_name", "last_name", "date_of_birth", "email_address", "email_is_verified", "username",
    "mobile_phone_number", "third_party_id", "is_active", "gender_id", "gender", "extra_data", "continent", "country",
    "us_region", "ca_province", "state", "city", "street_address_1", "street_address_2", "postal_code",
    "receive_email_updates", "date_receive_email_opt_in", "date_receive_email_opt_out", "total_points",
    "redeemable_points", "num_points_purchased", "facebook_access_token", "facebook_user_id", "date_fb_token_expires",
    "twitter_oauth_token", "twitter_oauth_token_secret", "pinterest_access_token", "pinterest_user_id",
    "inst_access_token", "inst_username", "inst_user_id", "activity_stream_opt_in", "store_id", "date_last_login",
    "date_last_updated", "date_created", "rank", "weekly_rank", "monthly_rank", "password", "salt",
    "hash_algorithm_id", "password_generated", "lang_pref", "sign_up_channel_id", "referral_url", "fan_level",
    "tier_info", "segments", "household_id", "custom_data",
)  # fmt: skip


def render(user: Mapping[str, Any], *, lookup: bool) -> dict[str, Any]:
    """The answer for a stored user; `lookup` adds `custom_data`, which only the captured look-up carries."""
    country_code = str(user.get("country_code") or "").upper()
    values: dict[str, Any] = dict.fromkeys(_ALWAYS_NULL)
    values.update({key: user.get(key) for key in _STORED_AS_IS})
    values.update(
        email_is_verified=bool(user.get("email_is_verified")),
        is_active=bool(user.get("is_active")),
        receive_email_updates=bool(user.get("receive_email_updates")),
        gender_id=_text(user.get("gender_id")),
        gender=guesses.GENDER_NAMES.get(_text(user.get("gender_id")) or ""),
        continent=guesses.CONTINENTS.get(country_code),
        country=guesses.COUNTRY_NAMES.get(country_code, country_code or None),
        city=user.get("city_name"),
        num_points_purchased=0,
        activity_stream_opt_in=True,
        hash_algorithm_id=guesses.HASH_ALGORITHM_ID,
        password_generated="0" if user.get("password_given") else "1",
        sign_up_channel_id=_text(user.get("sign_up_channel_id")),
        referral_url=guesses.REFERRAL_URL.format(code=f"{user['id']:08x}"),
        fan_level=guesses.TIER_LEVEL["title"],
        tier_info=_tier_info(user["date_created"]),
        segments=[],
        custom_data={},
    )
    keys = KEYS if lookup or not guesses.CUSTOM_DATA_ON_LOOKUP_ONLY else KEYS[:-1]
    return {key: values[key] for key in keys}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tier_info(date_created: int) -> dict[str, Any]:
    reached = iso_time(date_created)
    return {
        "timeframe_score": 0,
        "tier_score": 0,
        "current_level": dict(guesses.TIER_LEVEL),
        "next_level": None,
        "levels_above": [],
        "levels_below": [],
        "date_assigned": reached,
        "expiration_date": None,
        "reset_date": None,
        "score_needed_to_reach": None,
        "score_needed_to_maintain": None,
        "days_until_expiration_date": None,
        "days_until_reset_date": None,
        "is_maintenance_mode": True,
        "date_reached": reached,
        "assigned_by_event": "start",
    }
