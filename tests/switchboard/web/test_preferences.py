"""The preferences page: a recipient found by user id or address (never in a URL), categories toggled."""

from __future__ import annotations

import json

import redis

from bus import Bus
from switchboard.channels import Channel
from switchboard.keys import SwitchboardKeys
from switchboard.preferences import Preferences, recipient_key
from tests.bus.helpers import queue_jobs
from tests.web.conftest import Client
from tests.web.helpers import XSS


def test_find_by_address_then_opt_out_and_back_in(client: Client, bus: Bus, r: redis.Redis) -> None:
    found = client.submit("/switchboard/preferences/find", {"recipient": "Ada@Example.com "})
    assert found.status_code == 303 and "ada" not in found.headers["location"].lower()
    key = recipient_key(None, "ada@example.com")
    assert found.headers["location"].endswith(f"?key={key.replace(':', '%3A')}")
    page = client.page(found.headers["location"]).text
    assert 'data-category="marketing" data-channel="email"' in page and "always sent" in page  # security

    done = client.submit(
        "/switchboard/preferences/change", {"key": key, "category": "marketing", "channel": "email", "allowed": "no"}
    )
    assert done.status_code == 303
    page = client.page(done.headers["location"]).text
    assert "marketing on email: off." in page and "opted out" in page and "dashboard" in page
    store = Preferences(r, SwitchboardKeys(bus.keys), lambda: 0.0)
    [choice] = store.show(key)
    assert (choice.category, choice.channel, choice.allowed) == ("marketing", Channel.EMAIL.value, False)
    [event] = [j for j in queue_jobs(r, "bus_incoming") if j.get("bus_event_type") == "preference_changed"]
    assert event["recipient_key"] == key and "ada" not in json.dumps(event)

    client.submit(
        "/switchboard/preferences/change", {"key": key, "category": "marketing", "channel": "email", "allowed": "yes"}
    )
    assert store.show(key)[0].allowed is True


def test_refusals_are_flashed_and_change_nothing(client: Client, bus: Bus, r: redis.Redis) -> None:
    key = recipient_key("u-1", None)
    refused = client.submit(
        "/switchboard/preferences/change", {"key": key, "category": "security", "channel": "email", "allowed": "no"}
    )
    assert "cannot be opted out" in client.page(refused.headers["location"]).text
    bad = client.submit(
        "/switchboard/preferences/change", {"key": XSS, "category": "marketing", "channel": "email", "allowed": "no"}
    )
    assert "That is not a preference to change." in client.page(bad.headers["location"]).text
    neither = client.submit("/switchboard/preferences/find", {})
    assert "Give a user id or a recipient" in client.page(neither.headers["location"]).text
    assert Preferences(r, SwitchboardKeys(bus.keys), lambda: 0.0).show(key) == []
    assert XSS not in client.page(f"/switchboard/preferences?key={XSS}").text
