"""Every route of the dashboard (bus and switchboard pages) walked with hostile values: none answers 500.

Path parameters, query strings and form fields get what an attacker or a careless script
sends: unicode digits (``²``, ``٣``), numbers past every bound, deeply nested JSON, empty
strings, very long strings, and references shaped like the real ones around those. The
lists, queues and schedules they reach hold data too, so lookups find something to trip on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from bus import Bus
from bus.web import WebSettings
from bus.web.routes import bus_routes, events
from switchboard.web import create_switchboard_app
from switchboard.web.routes import switchboard_routes
from tests.switchboard.web.conftest import settings_for
from tests.web.conftest import Client
from tests.web.helpers import delayed_job, failure, fill_queue, rider_job, schedule

UNICODE_DIGITS = "²³¹٣۳०১߀𝟘０٠"
FIELDS = (
    "after", "app", "before", "channel", "confirm", "data", "digest", "event", "event_type", "exception",
    "id", "images", "masked", "next", "order", "page", "partial", "password", "per_page", "q", "queue",
    "reason", "recipient", "ref", "scope", "since", "status", "to", "token", "ts", "type", "username", "window",
)  # fmt: skip
SHA = "0" * 40

huge = st.integers(min_value=-(10**40), max_value=10**40).map(str) | st.sampled_from(
    ["253402300800", "99999999999999999999", "18446744073709551616", "9223372036854775808", "-1", "0"]
)
unicode_digits = st.text(alphabet=UNICODE_DIGITS, min_size=1, max_size=24)
deep_json = st.integers(min_value=1, max_value=3_000).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, '{"bus_event_type":"x","a":' + "[" * n])
)
long_text = st.integers(min_value=1_000, max_value=8_000).flatmap(
    lambda n: st.sampled_from(["9" * n, "x" * n, "²" * n, "/clear" * (n // 6)])
)
number = huge | unicode_digits | st.just("")
shaped = st.one_of(
    st.tuples(number, st.sampled_from([SHA, "", "zz"])).map(":".join),  # job references
    st.tuples(number, number).map("-".join),  # stream ids
)
VALUES = st.one_of(number, shaped, deep_json, long_text, st.text(max_size=40), st.sampled_from(["yes", "matching"]))


def routes() -> list[tuple[str, str, list[str]]]:
    """(method, path format, parameter names) of every route that takes requests."""
    found = []
    for route in [*events.ROUTES, *bus_routes(), *switchboard_routes()]:
        if isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append((method, route.path_format, list(route.param_convertors)))
    return found


ROUTES = routes()


@pytest.fixture
def client(bus: Bus, r: redis.Redis) -> Iterator[Client]:
    """The switchboard dashboard on a Redis holding a little of everything the routes read."""
    fill_queue(
        r, "shop_default", [rider_job("shop", "order_placed", "order_placed", "shop_default", id=i) for i in range(3)]
    )
    r.rpush("resque:failed", failure(), failure())
    schedule(r, 1_700_000_000, delayed_job("order_placed"))
    app = create_switchboard_app(bus, WebSettings(), settings_for())
    with Client(app, base_url="http://localhost", raise_server_exceptions=False) as c:
        yield c


def fill(path_format: str, params: list[str], values: list[str]) -> str:
    path = path_format
    for name, value in zip(params, values, strict=True):
        path = path.replace("{" + name + "}", quote(value, safe="") or "x")
    return path


@pytest.mark.parametrize(("method", "path_format", "params"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_route_answers_500(client: Client, method: str, path_format: str, params: list[str], data: Any) -> None:
    path = fill(path_format, params, [data.draw(VALUES, label=name) for name in params])
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4), label="fields")
    if method == "GET":
        url = f"{path}?{urlencode(fields)}"
        assume(len(url) < 60_000)  # the longest URL the test client sends
        response = client.get(url, headers={"accept": "text/html"})
    else:
        response = client.submit(path, fields)
    assert response.status_code != 500, (method, path[:200], {k: v[:80] for k, v in fields.items()})


def store_hostile_data(r: redis.Redis) -> str:
    """What any client of the same Redis may write where the dashboard reads; the traced event's id."""
    deep = "[" * 5_000 + "]" * 5_000
    bad_jobs = [
        "not json",
        deep,
        '{"class":5,"args":"x"}',
        '{"class":"QueueBus::Rider","args":[{"bus_published_at":1e308}]}',
    ]
    fill_queue(r, "shop_default", bad_jobs)
    r.rpush("resque:failed", "not json", deep, '{"failed_at":"year 99999","payload":5,"queue":7}', failure())
    for member in ("abc", "1e308", "253402300800", "-99999999999999"):
        r.zadd("resque:delayed_queue_schedule", {member: 1e300 if member == "abc" else float(member)})
        r.rpush(f"resque:delayed:{member}", deep)
    r.sadd("resque:workers", "host:²:shop_default", "host", "::", "h:99999999999999999999999:q")
    r.hset("resque:workers:heartbeat", mapping={"host:²:shop_default": "garbage", "host": "9999-99-99"})
    r.set("resque:worker:host:²:shop_default", deep)
    r.set("resque:stat:processed", "²")
    r.set("resque:stat:failed:host", "9" * 5000)
    r.hset("resque:bus:workers", mapping={"h:²:q": '{"pid":"abc","started_at":"x","queues":"q"}', "h:1:q": deep})
    r.xadd("resque:bus:log", {"type": "x", "bus_id": "1-a", "event": deep, "at": "never"})
    r.xadd("resque:bus:log", {"nothing": "useful"})
    now = int(time.time())
    r.hset(f"resque:bus:trace:{now // 60}:a", f"{now}-a", '{"at":"x","step":"driven","published_at_ms":"y"}\n' + deep)
    r.lpush("resque:switchboard:outbox", "not json", deep, '{"id":5,"html":7,"at":"x","to":{"a":1}}')
    r.zadd("resque:switchboard:deliveries", {"d1": now, "d2": now})
    r.hset("resque:switchboard:delivery:d1", mapping={"created_at": "x", "attempts": "²", "status": "??"})
    r.hset("resque:switchboard:delivery:d2", mapping={"created_at": "1e400", "updated_at": "nan", "attempts": "1e400"})
    return f"{now}-a"


def test_no_page_answers_500_whatever_redis_holds(bus: Bus, r: redis.Redis) -> None:
    traced = store_hostile_data(r)
    app = create_switchboard_app(bus, WebSettings(), settings_for())
    extra = ["/queues/shop_default", "/failed/entry/0:" + SHA, "/delayed/253402300800", f"/events/trace/{traced}"]
    extra += ["/switchboard/deliveries/record?id=d1", "/switchboard/deliveries/record?id=d2", "/failed?order=oldest"]
    pages = [path for method, path, params in ROUTES if method == "GET" and not params] + extra
    with Client(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        failed = [
            url
            for path in pages
            for url in (path, path + ("&" if "?" in path else "?") + "partial=1")
            if client.page(url).status_code in (500, 503)
        ]
    assert failed == []
