"""Suppressions: listed masked by channel; added from a form; removed only after confirming."""

from __future__ import annotations

import time

import redis

from bus import Bus
from switchboard.deliveries import Suppressions
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import mask, recipient_digest
from tests.web.conftest import Client
from tests.web.helpers import XSS


def suppress(bus: Bus, channel: str, recipient: str, reason: str, code: str | None = None) -> str:
    digest = recipient_digest(recipient)
    Suppressions(bus.redis, SwitchboardKeys(bus.keys)).add(channel, digest, mask(recipient), reason, time.time(), code)
    return digest


def test_listed_by_channel_with_recipients_masked(client: Client, bus: Bus) -> None:
    suppress(bus, "sms", "+14155550123", "invalid number", "21211")
    suppress(bus, "email", "bob@example.com", "bounced")
    page = client.page("/switchboard/suppressions").text
    assert "+1415*****23" in page and "b***@example.com" in page and "21211" in page
    assert "+14155550123" not in page and "bob@example.com" not in page
    only_sms = client.page("/switchboard/suppressions?channel=sms").text
    assert "+1415*****23" in only_sms and "b***@example.com" not in only_sms


def test_adding_stores_only_the_digest_and_the_masked_form(client: Client, bus: Bus, r: redis.Redis) -> None:
    done = client.submit("/switchboard/suppressions/add", {"channel": "email", "recipient": "Eve@Example.com "})
    assert done.status_code == 303
    page = client.page("/switchboard/suppressions").text
    assert "Suppressed E***@Example.com on email." in page and "added by an operator on the dashboard" in page
    stored = r.hgetall("resque:switchboard:suppressions:email")
    assert list(stored) == [recipient_digest("eve@example.com").encode()]
    assert "Eve@Example.com" not in str(stored)
    again = client.submit("/switchboard/suppressions/add", {"channel": "email", "recipient": "eve@example.com"})
    assert again.status_code == 303 and "Updated the suppression" in client.page("/switchboard/suppressions").text
    refused = client.submit("/switchboard/suppressions/add", {"channel": "fax", "recipient": "x"})
    assert (
        refused.status_code == 303 and "Give a channel and a recipient" in client.page("/switchboard/suppressions").text
    )


def test_removing_asks_first(client: Client, bus: Bus, r: redis.Redis) -> None:
    digest = suppress(bus, "email", "bob@example.com", "bounced")
    key = "resque:switchboard:suppressions:email"
    asked = client.submit("/switchboard/suppressions/remove", {"channel": "email", "digest": digest})
    assert asked.status_code == 200 and "Contact b***@example.com on email again?" in asked.text
    assert "Suppressed because: bounced" in asked.text and r.hlen(key) == 1
    assert f'<input type="hidden" name="digest" value="{digest}">' in asked.text
    done = client.submit("/switchboard/suppressions/remove", {"channel": "email", "digest": digest, "confirm": "yes"})
    assert done.status_code == 303 and r.hlen(key) == 0
    assert "b***@example.com is no longer suppressed on email." in client.page("/switchboard/suppressions").text
    again = client.submit("/switchboard/suppressions/remove", {"channel": "email", "digest": digest, "confirm": "yes"})
    assert again.status_code == 303 and "not suppressed" in client.page("/switchboard/suppressions").text


def test_removing_without_the_csrf_token_is_refused(client: Client, bus: Bus, r: redis.Redis) -> None:
    digest = suppress(bus, "email", "bob@example.com", "bounced")
    client.csrf()
    forged = client.post(
        "/switchboard/suppressions/remove",
        data={"channel": "email", "digest": digest, "confirm": "yes", "csrf_token": "0" * 64},
    )
    assert forged.status_code == 403 and r.hlen("resque:switchboard:suppressions:email") == 1


def test_hostile_reasons_and_codes_are_escaped(client: Client, bus: Bus) -> None:
    digest = suppress(bus, "push", XSS + "-token-long-enough", XSS, XSS)
    client.submit("/switchboard/suppressions/add", {"channel": "sms", "recipient": XSS, "reason": XSS})
    page = client.page("/switchboard/suppressions").text
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;window.__xss=1&lt;/script&gt;") >= 3
    asked = client.submit("/switchboard/suppressions/remove", {"channel": "push", "digest": digest}).text
    assert "<script>window.__xss" not in asked and "&lt;script&gt;" in asked


def test_malformed_entries_are_listed_not_fatal(client: Client, bus: Bus, r: redis.Redis) -> None:
    suppress(bus, "email", "bob@example.com", "bounced")
    r.hset("resque:switchboard:suppressions:email", "d1", '{"recipient": "x***@e.example", "added_at": "yesterday"}')
    r.hset("resque:switchboard:suppressions:sms", "d2", "not json")
    r.hset("resque:switchboard:suppressions:sms", "d3", "[1, 2]")
    page = client.page("/switchboard/suppressions")
    assert page.status_code == 200
    assert "b***@example.com" in page.text and "x***@e.example" in page.text and page.text.count("unreadable") == 2
