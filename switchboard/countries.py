"""Which country a phone number belongs to, for the SMS allow-list (``sms.allowed_countries``).

Numbers are placed with Google's libphonenumber (``phonenumberslite``: its metadata without
the geocoder and carrier data, updated every month), not by their calling-code prefix: +1
alone is the US, Canada and 23 other countries and territories, and SMS pumping favours
the Caribbean ones (+1 876 is Jamaica). A number the library cannot place in one country
(invalid, unallocated, or non-geographic such as +800 and +882) is refused when a list is set.
"""

from __future__ import annotations

import phonenumbers

from switchboard.errors import SettingsError


def region_of(number: str) -> str | None:
    """The ISO 3166 region code (``"US"``, ``"JM"``) of an E.164 number, or None."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if not region or region == phonenumbers.UNKNOWN_REGION or region == "001":
        return None
    return str(region)


def sms_allowed(number: str, allowed: tuple[str, ...]) -> bool:
    """True when SMS may go to ``number``: no allow-list, or its country is on it."""
    return not allowed or region_of(number) in allowed


def check_regions(codes: tuple[str, ...]) -> None:
    """Settings: every code must be a region libphonenumber knows, written as it writes them."""
    for code in codes:
        if code not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (a calling code is not a country: +1 covers 25 of them)" if code.lstrip("+").isdigit() else ""
            raise SettingsError(f"switchboard.sms.allowed_countries: {code!r} is not an ISO 3166 region code{hint}")
