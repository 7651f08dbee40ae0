"""Apps: subscriptions with readable matchers, who gets an event, unsubscribe with confirmation."""

from __future__ import annotations

import json
from typing import Any

import redis

from bus import BLANK, EMPTY, KEY, NIL, PRESENT, VALUE, Bus
from bus.pipeline.matcher import Matcher
from bus.web.describe import describe
from tests.web.conftest import Client
from tests.web.helpers import declare_shop


def test_apps_lists_every_subscription(client: Client, bus: Bus) -> None:
    declare_shop(bus, [])
    bus.subscribe_all()
    html = client.page("/apps").text
    assert 'data-app="shop"' in html
    assert "<code>order_placed</code>" in html and "shop_default" in html and "shop_critical" in html
    assert "bus_event_type = &#34;order_placed&#34;" in html
    assert "bus_event_type matches /^user_/" in html
    assert "::QueueBus::Rider" in html


def test_matchers_are_described_in_words() -> None:
    m = Matcher({"a": KEY, "b": VALUE, "c": PRESENT, "d": BLANK, "e": EMPTY, "f": NIL, "g": "x", "h": "(?i-mx:ab+)"})
    assert describe(m) == [
        "a is present (even if null)",
        "b is not null",
        "c is present and not blank",
        "d is absent, null or blank",
        'e is ""',
        "f is absent or null",
        'g = "x"',
        "h matches /ab+/i",
    ]
    assert describe(Matcher({"t": "a.c"})) == ["t = 'a.c' or matches /^a.c$/"]
    assert describe(Matcher({})) == ["(no filters: matches nothing)"]


def test_who_gets_runs_the_stored_matchers(client: Client, bus: Bus) -> None:
    declare_shop(bus, [])
    bus.subscribe_all()
    html = client.submit("/apps/who-gets", {"event_type": "user_signed_up", "event": '{"id": 1}'}).text
    assert "1 subscription(s) would get it" in html
    assert "shop_critical" in html.split('id="who-gets-result"')[1].split("</table>")[0]
    pasted = client.submit("/apps/who-gets", {"event": json.dumps({"bus_event_type": "order_placed"})}).text
    assert "1 subscription(s) would get it" in pasted and "<code>order_placed</code>" in pasted
    nobody = client.submit("/apps/who-gets", {"event_type": "nothing"}).text
    assert "No subscription matches this event" in nobody


def test_who_gets_explains_a_bad_event(client: Client) -> None:
    for event, message in (
        ("{bad", "Could not read the event"),
        ("[1]", "must be a JSON object"),
        ("{}", "give an event type"),
    ):
        response = client.submit("/apps/who-gets", {"event": event})
        assert response.status_code == 400 and message in response.text
        assert event.replace('"', "&#34;") in response.text  # the textarea keeps what was pasted


def test_unsubscribe_asks_first_then_removes(client: Client, bus: Bus, r: redis.Redis) -> None:
    calls: list[dict[str, Any]] = []
    declare_shop(bus, calls)
    bus.subscribe_all()
    asked = client.submit("/apps/shop/unsubscribe")
    assert asked.status_code == 200 and "Unsubscribe \u2068shop\u2069?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert r.sismember("resque:bus_apps", "shop")
    done = client.submit("/apps/shop/unsubscribe", {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/apps"
    assert not r.sismember("resque:bus_apps", "shop") and not r.exists("resque:bus_app:shop")
    page = client.page("/apps").text
    assert "Unsubscribed \u2068shop\u2069." in page and 'data-app="shop"' not in page
    assert "Unsubscribed \u2068shop\u2069." not in client.page("/apps").text  # the message shows once
    again = client.submit("/apps/shop/unsubscribe", {"confirm": "yes"})
    assert "\u2068shop\u2069 was not subscribed." in client.page(again.headers["location"]).text
