"""Every answer of the sandbox that neither Oracle's pages nor a captured answer pins down, in one place.

Each constant here is a guess. Where the docs and Oracle's captured calls (tests/fixtures/crowdtwist/) say something,
the sandbox follows them and nothing about it is here; when a real answer contradicts a line below, change the line
(and, where a switch exists in `Rules`, its default).
"""

from __future__ import annotations

# -- errors ----------------------------------------------------------------------------------------------------------

# The `error` code of a 400 refusal (the docs quote messages, not codes).
BAD_REQUEST = "invalid_request"
# The wording of a create refused for a taken third_party_id: unpublished. A `Rules` switch changes it per test.
THIRD_PARTY_ID_TAKEN = "Third Party Id is already taken"
# Which uniqueness CrowdTwist checks first when both the email and the third_party_id are taken (a `Rules` switch).
EMAIL_CHECKED_FIRST = False
# The body of a 403 for a wrong or missing key (the docs say only "403").
INVALID_API_KEY = ("invalid_api_key", "Invalid API key")
# The message of a 404 for an unknown route (an unknown user's, "User does not exist.", was seen on the real API).
UNKNOWN_ROUTE = "Page not found"
# The 400 for a second DELETE while the first is still in progress ("Unable to initiate deletion" is documented,
# not when it is given).
DELETION_ALREADY_REQUESTED = "Unable to initiate deletion"

# -- the user object -------------------------------------------------------------------------------------------------

# Fields not sent on create. The captured create answer shows receive_email_updates true without it being sent.
DEFAULT_RECEIVE_EMAIL_UPDATES = True
DEFAULT_EMAIL_IS_VERIFIED = False
# `gender` beside `gender_id`: the capture shows "2" → "Male"; the other value is inferred.
GENDER_NAMES = {"1": "Female", "2": "Male"}
# `country` is a name where the request sent an ISO-2 code; the capture shows "United States" for a US member.
COUNTRY_NAMES = {
    "US": "United States", "CA": "Canada", "GB": "United Kingdom", "FR": "France", "DE": "Germany", "IN": "India",
    "MX": "Mexico", "ES": "Spain", "IT": "Italy", "JP": "Japan", "AU": "Australia", "BR": "Brazil",
}  # fmt: skip
CONTINENTS = {"US": "North America", "CA": "North America", "MX": "North America"}
# The program's tiers: one level, as in the captured profile of a program without tiers.
TIER_LEVEL = {"title": "Member", "min_value": 0, "max_value": None, "image_url": None}
REFERRAL_URL = "https://sandbox.crowdtwist.invalid/?_cts_={code}"
# `custom_data` appears in the captured profile (GET), not in the captured create and update answers (another
# program): the sandbox answers it on look-ups only.
CUSTOM_DATA_ON_LOOKUP_ONLY = True
# Sign-up awards no points in the sandbox (programs differ: the capture shows 170).
SIGN_UP_POINTS = 0
# Captured values are "4" and "5"; "password_generated" is taken as "1" when no password was sent.
HASH_ALGORITHM_ID = "4"

# -- paging ----------------------------------------------------------------------------------------------------------

# A page_size above the documented maximum is lowered to it, not refused (routes.page_window): the unkind case
# for a client that stops at the first page shorter than what it asked for.
# The default page_size when none is sent, and the refusal of a page or page_size that is not a positive number.
DEFAULT_PAGE_SIZE = 10
BAD_PAGE = "{name} must be a positive whole number"
# Lists come back as a bare list (captured) or as an object holding the list (published too); the key of that object
# is not: `Rules.list_shape` switches the shape, and this is the key.
LIST_KEY = "items"
# Receipts history is listed in the docs without a path; the sandbox serves the client's guess, /v2.1/…/receipts.
# What a list item holds is not published either: the sandbox serves back what a test seeded.

# -- the point-of-sale host -------------------------------------------------------------------------------------------

# Its error envelope is seen ({"system", "reason", "description", "message"}); the words of these two are not.
POS_SYSTEM = "pos"
POS_QUERY_KEY_REFUSED = ("invalid", "API key must be sent in the X-CT-Authorization header")
POS_USER_NOT_FOUND = ("user_not_found", "User not found")

# -- deletion --------------------------------------------------------------------------------------------------------

# Seconds of sandbox time between Deletion_initiated → Deletion_in_progress → Deletion_completed.
DELETION_STEP_SECONDS = 60.0
# Who `initiated_by` names for a deletion requested over the API.
DELETION_INITIATED_BY = "api"
