"""Numbers from URLs and forms, read one strict way: ASCII digits only, within bounds.

``str.isdigit`` accepts ``²`` and ``٣``, which ``int()`` then refuses or reads as a
different number, and an unbounded number overflows whatever it reaches (a date, an
LRANGE offset). Every path and form value that should be a number goes through here.
"""

from __future__ import annotations

import re

MAX_INT = 2**62
"""Larger than any list, page or stream position the dashboard can meet."""
MIN_TIMESTAMP = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z: what a date can show
MAX_SCHEDULED = 2**53 - 1
"""The farthest timestamp the delayed schedule reads (its scores are floats); any client may
write one past year 9999, and the dashboard must still show and remove it."""
_INT = re.compile(r"-?[0-9]{1,19}")


def parse_int(text: object, *, low: int = 0, high: int = MAX_INT) -> int | None:
    """``text`` as an int in ``[low, high]``, or None (for anything else, unicode digits included)."""
    if not isinstance(text, str) or not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_timestamp(text: object) -> int | None:
    """Epoch seconds that a date can show (years 1 to 9999), or None."""
    return parse_int(text, low=MIN_TIMESTAMP, high=MAX_TIMESTAMP)


def parse_scheduled(text: object) -> int | None:
    """A timestamp the delayed schedule may hold (shown as an invalid time past year 9999), or None."""
    return parse_int(text, low=-MAX_SCHEDULED, high=MAX_SCHEDULED)
