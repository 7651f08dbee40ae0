"""Quiet hours: when a non-transactional message would reach someone at night, hold it until morning.

The window (``21:00-08:00``) is read in the recipient's timezone: the event's ``timezone``,
else its ``bus_timezone`` (set by the publishing app's context), else the settings' default.
Wall-clock times are turned into instants with zoneinfo, so a window ending in a DST gap ends
when the clocks jump (02:30 on a spring-forward night ends at 03:00), and one ending in the
repeated hour of autumn ends at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.categories import Category
from switchboard.errors import SettingsError

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
HIGH = "high"


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A daily window of local wall-clock time; ``start > end`` spans midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietWindow:
        match = _WINDOW.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a window like '21:00-08:00'")
        start = time(int(match[1]), int(match[2]))
        end = time(int(match[3]), int(match[4]))
        if start == end:
            raise ValueError(f"{text!r} is an empty window: it starts and ends at the same time")
        return cls(start, end)

    def ends_at(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the window ends (UTC) if ``now`` is inside it in ``zone``; None when it is not."""
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside, day = self.start <= clock < self.end, local.date()
        else:
            inside = clock >= self.start or clock < self.end
            day = local.date() + timedelta(days=1) if clock >= self.start else local.date()
        return first_instant(day, self.end, zone) if inside else None


def first_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clocks of ``zone`` show ``wall`` or later on ``day``."""
    earlier = datetime.combine(day, wall, zone).replace(fold=0)
    utc = earlier.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == earlier.replace(tzinfo=None):
        return utc  # the wall time exists (fold=0 is its first occurrence when it repeats)
    # In a gap: the clocks jump over ``wall``; the answer is the jump. Search between the two
    # readings of the nonexistent time, whose instants straddle it.
    low = datetime.combine(day, wall, zone).replace(fold=1).astimezone(UTC)
    high = utc
    if low > high:
        low, high = high, low
    target = datetime.combine(day, wall)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class QuietHoursSettings:
    """``[switchboard.quiet_hours]``."""

    window: str = ""
    """Local time to hold non-transactional messages in, e.g. "21:00-08:00"; empty: never held."""
    default_timezone: str = "UTC"
    """For recipients whose event says no timezone."""

    def __post_init__(self) -> None:
        if self.window:
            try:
                QuietWindow.parse(self.window)
            except ValueError as exc:
                raise SettingsError(f"switchboard.quiet_hours.window: {exc}") from None
        if zone(self.default_timezone) is None:
            raise SettingsError(f"switchboard.quiet_hours.default_timezone: no timezone {self.default_timezone!r}")

    def hold_until(
        self,
        now: datetime,
        *,
        category: Category | None,
        priority: str | None = None,
        timezone: str | None = None,
        bus_timezone: str | None = None,
    ) -> datetime | None:
        """When a message due ``now`` may go, if quiet hours hold it; None to send now.

        Held: a message of a non-transactional category whose priority is not "high", while
        the window is on in the recipient's timezone. No category means transactional.
        """
        if not self.window or category is None or category.transactional or priority == HIGH:
            return None
        recipient_zone = zone(timezone) or zone(bus_timezone) or ZoneInfo(self.default_timezone)
        return QuietWindow.parse(self.window).ends_at(now, recipient_zone)


def zone(name: str | None) -> ZoneInfo | None:
    """The timezone called ``name`` ("Europe/Paris"), or None for a name that is not one."""
    if not name or len(name) > 64 or not _ZONE_NAME.match(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
