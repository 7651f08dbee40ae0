"""Per-recipient limits in Redis, and the SMS country allow-list."""

from __future__ import annotations

import pytest
import redis

from bus.keys import Keys
from switchboard.countries import region_of, sms_allowed
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits, limit_for
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore
from tests.switchboard.test_cli import ROOT

KEYS = SwitchboardKeys(Keys())
SMS = RecipientLimit("sms", count=3, window=3600)
NUMBER = "+14155550123"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(r: redis.Redis, clock: Clock) -> RecipientLimits:
    return RecipientLimits(r, KEYS, clock)


def test_a_recipient_gets_at_most_the_limit_per_window(limits: RecipientLimits, clock: Clock) -> None:
    verdicts = []
    for n in range(4):
        clock.now += 60
        [verdict] = limits.check(SMS, [NUMBER], f"sms:request-{n}")
        verdicts.append((verdict.allowed, verdict.count))
    assert verdicts == [(True, 1), (True, 2), (True, 3), (False, 3)]
    [refused] = limits.check(SMS, [NUMBER], "sms:request-4")
    assert refused.frees_at == 1_800_000_000.0 + 60 + 3600  # when the first one leaves the window
    clock.now = refused.frees_at
    assert limits.check(SMS, [NUMBER], "sms:request-4")[0].allowed


def test_a_retried_delivery_counts_once(limits: RecipientLimits) -> None:
    for _ in range(5):
        [verdict] = limits.check(SMS, [NUMBER], "sms:same-request")
        assert verdict.allowed and verdict.count == 1


def test_each_recipient_and_each_scope_counts_apart(limits: RecipientLimits) -> None:
    for n in range(3):
        limits.check(SMS, [NUMBER], f"sms:{n}")
    (other,) = limits.check(SMS, ["+14155550199"], "sms:x")
    assert other.allowed
    otp = RecipientLimit("template:sms/otp", count=10, window=600)
    assert limits.check(otp, [NUMBER], "sms:otp-1")[0].allowed


def test_only_the_recipients_over_the_limit_are_refused(limits: RecipientLimits) -> None:
    email = RecipientLimit("email", count=1, window=3600)
    limits.check(email, ["Busy@Example.com"], "email:first")
    busy, fresh = limits.check(email, ["busy@example.com", "new@example.com"], "email:second")
    assert (busy.allowed, fresh.allowed) == (False, True)  # the address is matched case-insensitively


def test_counts_are_readable_masked_and_nothing_is_stored_in_clear(limits: RecipientLimits, r: redis.Redis) -> None:
    for n in range(4):
        limits.check(SMS, [NUMBER], f"sms:{n}")
    looked_up = limits.count(SMS, NUMBER)
    assert (looked_up.recipient, looked_up.count, looked_up.allowed) == ("+1415*****23", 3, False)
    [refused] = limits.refused(SMS)
    assert (refused.recipient, refused.count, refused.limit) == ("+1415*****23", 3, 3)
    stored = " ".join(f"{key!r} {r.zrange(key, 0, -1)!r}" for key in r.keys("*"))
    assert "4155550123" not in stored


def test_refused_recipients_age_out_with_the_window(limits: RecipientLimits, clock: Clock) -> None:
    for n in range(4):
        limits.check(SMS, [NUMBER], f"sms:{n}")
    clock.now += SMS.window + 1
    assert limits.refused(SMS) == []
    assert limits.count(SMS, NUMBER).count == 0


def test_the_server_clock_when_none_is_given(r: redis.Redis) -> None:
    limits = RecipientLimits(r, KEYS)
    for n in range(3):
        limits.check(SMS, [NUMBER], f"sms:{n}")
    assert not limits.check(SMS, [NUMBER], "sms:3")[0].allowed
    [refused] = limits.refused(SMS)
    assert refused.count == 3


# --- the SMS country allow-list -------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("+14155550123", "US"),
        ("+16135550123", "CA"),
        ("+18765551234", "JM"),  # +1, but Jamaica: a calling-code prefix would let it through
        ("+33612345678", "FR"),
        ("+80012345678", None),  # international freephone: no country
        ("+882123456789", None),
        ("not a number", None),
        ("+" + "9" * 5000, None),
    ],
)
def test_numbers_are_placed_by_libphonenumber(number: str, region: str | None) -> None:
    assert region_of(number) == region


def test_the_allow_list() -> None:
    allowed = SwitchboardSettings.from_table({"sms": {"allowed_countries": ["US", "CA"]}}).sms.allowed_countries
    assert sms_allowed("+14155550123", allowed) and sms_allowed("+16135550123", allowed)
    assert not sms_allowed("+18765551234", allowed) and not sms_allowed("+33612345678", allowed)
    assert sms_allowed("+33612345678", ())  # no list: everywhere


def test_which_limit_a_send_counts_against() -> None:
    settings = SwitchboardSettings.from_table({"push": {"recipient_limit": 0}})
    store = TemplateStore(ROOT / "templates", refresh_interval=None)
    reset, shipped = store.get("sms", "password_reset"), store.get("sms", "order_shipped")
    assert limit_for("sms", settings.sms, reset) == RecipientLimit("template:sms/password_reset", 3, 900)
    assert limit_for("sms", settings.sms, shipped) == RecipientLimit("sms", 5, 3600)
    assert limit_for("sms", settings.sms, None) == RecipientLimit("sms", 5, 3600)  # inline body
    assert limit_for("email", settings.email, None) == RecipientLimit("email", 20, 3600)
    assert limit_for("push", settings.push, None) is None
