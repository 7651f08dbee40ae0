"""Quiet hours (DST-correct with zoneinfo), categories in settings and templates, the event's timezone and priority."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.categories import DEFAULT_CATEGORIES, Category
from switchboard.events import InvalidNotification, parse_event
from switchboard.quiet_hours import QuietHoursSettings, QuietWindow, first_instant
from switchboard.templating import TemplateStore
from tests.switchboard.test_cli import ROOT
from tests.switchboard.test_templates import NAME_ONLY, problem_lines, sms, write

NIGHT = QuietHoursSettings(window="21:00-08:00", default_timezone="Europe/Paris")
MARKETING = DEFAULT_CATEGORIES["marketing"]
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "held_until"),
    [
        (utc(2026, 6, 10, 12, 0), None),  # 14:00 in Paris
        (utc(2026, 6, 10, 19, 30), utc(2026, 6, 11, 6, 0)),  # 21:30 in Paris: until 08:00 (UTC+2) tomorrow
        (utc(2026, 6, 11, 1, 0), utc(2026, 6, 11, 6, 0)),  # 03:00 in Paris: until 08:00 today
        (utc(2026, 6, 11, 6, 0), None),  # 08:00 sharp: the window is over
        (utc(2026, 1, 10, 20, 0), utc(2026, 1, 11, 7, 0)),  # winter: 08:00 is 07:00 UTC
    ],
)
def test_non_transactional_messages_wait_for_the_end_of_the_window(now: datetime, held_until: datetime | None) -> None:
    assert NIGHT.hold_until(now, category=MARKETING) == held_until


def test_what_is_never_held() -> None:
    night = utc(2026, 6, 11, 1, 0)
    assert NIGHT.hold_until(night, category=DEFAULT_CATEGORIES["security"]) is None
    assert NIGHT.hold_until(night, category=None) is None  # a template without a category
    assert NIGHT.hold_until(night, category=MARKETING, priority="high") is None
    assert QuietHoursSettings().hold_until(night, category=MARKETING) is None  # no window set


def test_the_recipients_timezone_event_first_then_bus_then_default() -> None:
    now = utc(2026, 6, 11, 1, 0)  # 03:00 in Paris, 21:00 in New York, 11:00 in Sydney
    assert NIGHT.hold_until(now, category=MARKETING, timezone="Australia/Sydney") is None
    held = NIGHT.hold_until(now, category=MARKETING, timezone="America/New_York", bus_timezone="Australia/Sydney")
    assert held == utc(2026, 6, 11, 12, 0)  # 08:00 EDT
    assert NIGHT.hold_until(now, category=MARKETING, bus_timezone="Australia/Sydney") is None
    held = NIGHT.hold_until(now, category=MARKETING, bus_timezone="Not/AZone")  # a bad bus value: the default
    assert held == utc(2026, 6, 11, 6, 0)


def test_a_window_within_one_day() -> None:
    lunch = QuietHoursSettings(window="12:00-14:00")
    assert lunch.hold_until(utc(2026, 3, 1, 13, 0), category=MARKETING) == utc(2026, 3, 1, 14, 0)
    assert lunch.hold_until(utc(2026, 3, 1, 15, 0), category=MARKETING) is None


def test_a_window_ending_in_the_spring_gap_ends_when_the_clocks_jump() -> None:
    # 2026-03-08 in New York: 02:00 EST becomes 03:00 EDT; 02:30 never shows on the clocks.
    window = QuietWindow.parse("22:00-02:30")
    ends = window.ends_at(utc(2026, 3, 8, 4, 0), NEW_YORK)  # 23:00 EST on the 7th
    assert ends == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert ends is not None and ends.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:00 EDT"


def test_a_window_ending_in_the_autumn_repeat_ends_at_its_first_occurrence() -> None:
    # 2026-11-01 in New York: 01:00-02:00 happens twice (EDT, then EST).
    ends = QuietWindow.parse("22:00-01:30").ends_at(utc(2026, 11, 1, 3, 0), NEW_YORK)  # 23:00 EDT on Oct 31
    assert ends == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first time


ZONES = ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_first_instant_is_the_first_moment_the_clocks_show_that_time(zone_name: str, day: date, wall: time) -> None:
    zone = ZoneInfo(zone_name)
    found = first_instant(day, wall, zone)
    target = datetime.combine(day, wall)
    assert found.astimezone(zone).replace(tzinfo=None) >= target
    assert (found - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None) < target


@pytest.mark.parametrize("text", ["21:00", "25:00-08:00", "21:00-21:00", "9pm-8am", "21:00-08:00-09:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        QuietWindow.parse(text)


# --- the event's own timezone and priority -----------------------------------------------


def test_events_carry_a_timezone_and_a_priority() -> None:
    event = parse_event("send_sms", {"to": "+14155550123", "body": "hi", "timezone": "Asia/Tokyo", "priority": "high"})
    assert (event.timezone, event.priority) == ("Asia/Tokyo", "high")
    assert parse_event("send_sms", {"to": "+14155550123", "body": "hi"}).priority == "normal"


@pytest.mark.parametrize(
    "fields",
    [{"timezone": "Mars/Olympus"}, {"timezone": "/etc/passwd"}, {"timezone": "x" * 5000}, {"priority": "urgent"}],
)
def test_a_bad_timezone_or_priority_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidNotification):
        parse_event("send_sms", {"to": "+14155550123", "body": "hi", **fields})


# --- categories in templates ---------------------------------------------------------------


def test_shipped_templates_have_categories_the_settings_define() -> None:
    store = TemplateStore(ROOT / "templates", refresh_interval=None, categories=DEFAULT_CATEGORIES)
    assert store.check() == []
    categories = {info.key: info.category for info in store.templates()}
    assert categories["sms/password_reset"] == "security" and categories["push/welcome"] == "marketing"
    assert all(categories.values())
    limit = store.get("sms", "password_reset").recipient_limit
    assert limit is not None and (limit.count, limit.window) == (3, 900)


def test_an_unknown_category_is_a_template_problem(tmp_path: Path) -> None:
    write(tmp_path, sms("promo", "Hi {{ name }}", 'category = "promotions"\n' + NAME_ONLY))
    store = TemplateStore(tmp_path, refresh_interval=None, categories={"orders": Category(), "marketing": Category()})
    assert problem_lines(store) == [
        "sms/promo template.toml: category 'promotions' is not in [switchboard.categories] (marketing, orders)"
    ]
    assert store.render("sms", "promo", {"name": "Ada"}).body == "Hi Ada"  # still renders: policy, not syntax


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ('category = "Big Sale"\n', "category 'Big Sale' must be a name"),
        ("[recipient_limit]\ncount = 3\n", "needs count and window"),
        ("[recipient_limit]\ncount = -1\nwindow = 60\n", "count must be"),
        ("[recipient_limit]\ncount = 1\nwindow = 0\n", "window must be"),
    ],
)
def test_bad_category_or_limit_declarations(tmp_path: Path, manifest: str, message: str) -> None:
    head, _, rest = NAME_ONLY.partition("[fields]")
    write(tmp_path, sms("otp", "{{ name }}", head + manifest + "[fields]" + rest))
    [line] = problem_lines(TemplateStore(tmp_path, refresh_interval=None))
    assert message in line
