"""The Events page (feed, search, stream-id paging, rates), the trace view and /metrics,
against a real server, real workers and the real logger."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import redis

from bus import Bus, Retry
from bus.keys import Keys
from bus.logger import LoggerApp, LoggerSettings
from bus.logger.stream import EventLog, entry_fields
from bus.settings import BusSettings, ObserveSettings
from bus.stores.traces import read_trace
from bus.web import WebSettings, create_app
from tests.bus.helpers import drain, failed_orders_in_and_out_of_the_sample
from tests.web.conftest import Client
from tests.web.helpers import XSS

LOG = "resque:bus:log"
_ROW = re.compile(r'<tr data-entry="([0-9-]+)">')
_TRACE_LINK = re.compile(r'<a href="([^"]+)" class="trace-link">')


def log_events(r: redis.Redis, events: list[dict[str, Any]]) -> None:
    """Entries as the logger writes them (with the job's ack, through a pipeline)."""
    event_log = EventLog(r, Keys(), max_length=100_000)
    pipe = r.pipeline(transaction=False)
    for event in events:
        event_log.append(pipe, event)
    pipe.execute()


def event(n: int, event_type: str = "user_created", **attrs: Any) -> dict[str, Any]:
    return {"bus_event_type": event_type, "bus_id": f"1764000000-{n:04d}", "bus_app_hostname": "web-1", "n": n, **attrs}


def shown(page: str) -> list[int]:
    """The ``n`` of each feed row, top to bottom."""
    return [int(m) for m in re.findall(r'<tr data-entry="[0-9-]+">.*?&#34;n&#34;: (\d+)', page, re.S)]


def link(page: str, rel: str) -> str | None:
    """The pager's link (a query string, relative to /events)."""
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return "/events" + html.unescape(match.group(1)) if match else None


# --- the feed ---------------------------------------------------------------------------
def test_the_feed_is_newest_first_and_searchable(client: Client, r: redis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    old: dict[Any, Any] = entry_fields(event(0, "user_created"))
    r.xadd(LOG, old, id=f"{now_ms - 2 * 3600 * 1000}-0")  # two hours ago
    log_events(r, [event(1), event(2, "order_placed"), event(3), event(4, "order_placed", bus_id="1764000000-ab7f")])
    page = client.page("/events").text
    assert shown(page) == [4, 3, 2, 1, 0]
    assert "5 event(s) in the log" in page
    assert shown(client.page("/events?type=order_placed").text) == [4, 2]
    assert shown(client.page("/events?since=1h").text) == [4, 3, 2, 1]
    assert shown(client.page("/events?since=1h&type=user_created").text) == [3, 1]
    assert shown(client.page("/events?q=AB7F").text) == [4]  # any part of the bus_id, any case
    none = client.page("/events?type=nothing_like_it").text
    assert shown(none) == [] and "No logged events match." in none
    odd = client.page("/events?since=soon").text
    assert "expected e.g. 90s, 10m, 2h or 1d" in odd and shown(odd) == [4, 3, 2, 1, 0]
    part = client.page("/events?type=order_placed&partial=1").text
    assert "<html" not in part and shown(part) == [4, 2]


def test_the_feed_pages_by_stream_id(client: Client, r: redis.Redis) -> None:
    log_events(r, [event(n, "tick" if n % 2 else "tock") for n in range(240)])
    first = client.page("/events?type=tick").text
    assert shown(first) == list(range(239, 139, -2)) and link(first, "prev") is None
    older = link(first, "next")
    assert older and "before=" in older and "type=tick" in older
    second = client.page(older).text
    assert shown(second) == list(range(139, 39, -2))
    last = client.page(link(second, "next") or "").text
    assert shown(last) == list(range(39, 0, -2)) and link(last, "next") is None
    back = client.page(link(last, "prev") or "").text  # newer: the page before, again
    assert shown(back) == shown(second)
    assert shown(client.page(link(back, "first") or "").text) == shown(first)
    assert shown(client.page("/events?before=not-an-id").text)[:3] == [239, 238, 237]


def test_a_search_reads_a_bounded_part_of_the_stream_and_goes_on_from_there(client: Client, r: redis.Redis) -> None:
    log_events(r, [event(1, "rare")])
    for chunk in range(11):
        log_events(r, [event(n, "common") for n in range(chunk * 1000, chunk * 1000 + 1000)])
    page = client.page("/events?type=rare").text
    assert shown(page) == [] and "No logged events match in the 10,000 entries searched." in page
    assert "searched 10,000 entries" in page
    on = client.page(link(page, "next") or "").text
    assert shown(on) == [1]


def test_an_empty_log_says_how_to_start_the_logger(client: Client) -> None:
    page = client.page("/events").text
    assert 'id="empty-log"' in page and "the logger is not running" in page and "<code>bus logger</code>" in page
    assert '<a href="/events" aria-current="page">Events</a>' in page
    assert '<a href="/events">Events</a>' in client.page("/").text


# --- the trace view -----------------------------------------------------------------------
def fan_out(b: Bus) -> str:
    """Three apps get ``signup``; crm fails its first try and succeeds on the retry. Publishes one."""
    tries: list[int] = []

    def flaky(attributes: dict[str, Any]) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("crm unreachable")

    b.dispatch("mailer").add("signup", lambda a: None)
    b.dispatch("profile").add("signup", lambda a: None)
    b.dispatch("crm").add("signup", flaky, retry=Retry(max_retries=3, base_delay=0.01))
    b.subscribe_all()
    return b.publish("signup", {"user": 1, "plan": "pro"})


def test_the_trace_view_shows_every_step_and_the_logged_event(client: Client, redis_url: str) -> None:
    every = ObserveSettings(trace_sample=1.0)
    b = Bus(settings=BusSettings(redis_url=redis_url, hostname="web-7", observe=every))
    LoggerApp(b, LoggerSettings())
    bus_id = fan_out(b)
    drain(b, ["bus_incoming", *b.app_queues()])
    feed = client.page("/events").text
    href = html.unescape(_TRACE_LINK.findall(feed)[0])
    assert href == f"/events/trace/{bus_id}"
    page = client.page(href).text
    assert f"<h1>Event <code>{bus_id}</code></h1>" in page
    steps = re.findall(r'<tr data-step="(\w+)"(?: data-outcome="(\w+)")?(?: data-app="(\w+)")?>', page)
    assert steps[:2] == [("published", "", ""), ("driven", "", "")]
    assert sorted(steps[2:]) == [
        ("ride", "retried", "crm"),
        ("ride", "succeeded", "bus_logger"),
        ("ride", "succeeded", "crm"),
        ("ride", "succeeded", "mailer"),
        ("ride", "succeeded", "profile"),
    ]
    assert "by host <strong><bdi>web-7</bdi></strong>" in page
    for target in ("crm / signup → queue crm_default", "mailer / signup → queue mailer_default"):
        target = re.sub(r"(\w+) / (\w+) → queue (\w+)", r"<bdi>\1</bdi> / <bdi>\2</bdi> → queue <bdi>\3</bdi>", target)
        assert target in page
    assert "<bdi>profile</bdi> / <bdi>signup</bdi> → queue <bdi>profile_default</bdi>" in page
    assert "ConnectionError: crm unreachable" in page and "next try in" in page and "retry 1" in page
    assert re.search(r"<bdi>crm</bdi> / <bdi>signup</bdi></strong> on <bdi>crm_default</bdi> · [0-9.]+ ms", page)
    logged = re.search(r'<pre id="logged-event">(.*?)</pre>', page, re.S)
    assert logged and "&#34;plan&#34;: &#34;pro&#34;" in logged.group(1)
    assert client.page(href + "?partial=1").text.count("<tr data-step=") == 7
    b.close()


def test_a_trace_without_the_logger_and_an_unknown_event(client: Client, bus: Bus) -> None:
    bus_id = fan_out(bus)
    drain(bus, ["bus_incoming", *bus.app_queues()])
    page = client.page(f"/events/trace/{bus_id}")
    assert page.status_code == 200 and page.text.count('data-step="ride"') == 4
    assert 'id="not-logged"' in page.text and "bus logger" in page.text
    unknown = client.page("/events/trace/1764000000-nope")
    assert unknown.status_code == 404 and "No trace for this event" in unknown.text


def test_a_partial_trace_says_why_it_is_partial(redis_url: str) -> None:
    b, unsampled, sampled = failed_orders_in_and_out_of_the_sample(redis_url)
    with Client(create_app(b, WebSettings()), base_url="http://localhost") as c:
        partial = c.page(f"/events/trace/{unsampled}").text
        assert 'id="trace-gap"' in partial and "outside the trace sample" in partial
        assert 'data-outcome="failed"' in partial and 'data-step="driven"' not in partial
        whole = c.page(f"/events/trace/{sampled}").text
        assert 'id="trace-gap"' not in whole and 'data-step="driven"' in whole
    b.close()


# --- rates and /metrics ---------------------------------------------------------------------
def cells(page: str, attr: str, value: str) -> dict[str, str]:
    """The ``data-field`` cells of the rates row ``<tr data-attr="value">``."""
    row = re.search(rf'<tr {attr}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert row, value
    return dict(re.findall(r'data-field="(\w+)">([^<]*)<', row.group(1)))


def observed_bus(redis_url: str) -> Bus:
    b = Bus(redis_url)
    b.dispatch("shop").add("order_placed", lambda a: None)
    b.dispatch("audit").add("all", lambda a: None, matcher={"bus_event_type": "(?-mix:.)"})
    b.subscribe_all()
    b.publish_many([("order_placed", {"n": n}) for n in range(7)] + [("user_seen", {})] * 3)
    drain(b, ["bus_incoming", *b.app_queues()])
    return b


def test_the_rates_panel_counts_per_type_app_and_subscription(client: Client, redis_url: str) -> None:
    b = observed_bus(redis_url)
    page = client.page("/events?partial=1").text
    placed = cells(page, "data-type", "order_placed")
    assert placed["total"] == "7" and placed["per_minute"] == "0.7"
    assert int(placed["this_minute"]) + int(placed["last_minute"]) == 7
    assert cells(page, "data-type", "user_seen")["total"] == "3"
    assert page.index('data-type="order_placed"') < page.index('data-type="user_seen"')  # busiest first
    assert cells(page, "data-app", "shop") | {"last_minute": ""} == {
        "processed": "7",
        "failed": "0",
        "per_minute": "0.7",
        "last_minute": "",
    }
    assert cells(page, "data-app", "audit")["processed"] == "10"
    assert cells(page, "data-sub", "shop/order_placed")["count"] == "7"
    assert cells(page, "data-sub", "audit/all")["count"] == "10"
    assert re.search(r'<polyline points="[0-9., ]+">', page)
    hour = client.page("/events?window=60&partial=1").text
    assert cells(hour, "data-type", "order_placed")["per_minute"] == "0.1" and "last 60 minutes" in hour
    b.close()


_SAMPLE = re.compile(r'[a-z_]+(\{[a-z]+="(?:[^"\\\n]|\\[\\"n])*"(,[a-z]+="(?:[^"\\\n]|\\[\\"n])*")*\})? -?[0-9.e+]+')


def test_metrics_add_event_counts_and_latency_histograms(client: Client, redis_url: str) -> None:
    b = observed_bus(redis_url)
    b.publish('we"ird\\type\nx', {})
    drain(b, ["bus_incoming"])
    text = client.get("/metrics").text
    assert "bus_processed_total " in text and 'bus_queue_pending{queue="shop_default"} 0' in text
    assert 'bus_events_total{type="order_placed"} 7' in text
    assert 'bus_events_total{type="we\\"ird\\\\type\\nx"} 1' in text
    assert 'bus_handler_latency_ms_count{app="shop",sub="order_placed"} 7' in text
    assert 'bus_handler_latency_ms_bucket{app="audit",le="+Inf",sub="all"} 10' in text
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.fullmatch(line), line
    b.close()


# --- hostile input ---------------------------------------------------------------------------
def test_hostile_events_are_escaped_in_the_feed_the_rates_and_the_trace(client: Client, r: redis.Redis) -> None:
    hostile = {"bus_event_type": XSS, "bus_id": XSS, "bus_app_hostname": XSS, XSS: XSS, "nested": {XSS: [XSS]}}
    log_events(r, [hostile])
    minute = int(time.time() // 60)
    r.hincrby(f"resque:bus:metrics:events:{minute}", XSS, 3)
    r.hincrby("resque:bus:metrics:events:total", XSS, 3)
    r.hincrby(f"resque:bus:metrics:latency:{minute}", f"{XSS}|{XSS}|3", 2)
    ride = {"step": "ride", "at": time.time() * 1000, "worker": XSS, "app": XSS, "sub": XSS, "queue": XSS}
    trace = [
        {"step": "driven", "at": time.time() * 1000, "worker": XSS, "type": XSS, "host": XSS, "published_at": 1,
         "to": [{"app": XSS, "sub": XSS, "queue": XSS}, XSS]},
        {**ride, "outcome": XSS, "attempt": XSS, "ms": XSS, "error": XSS, "retry_in": XSS},
        {**ride, "step": XSS},
    ]  # fmt: skip
    lines = [json.dumps(t) for t in trace] + ["not json", "[1]"]
    r.hset(Keys("resque").trace(XSS), XSS, "\n".join(lines) + "\n")
    feed = client.page("/events").text
    href = html.unescape(_TRACE_LINK.findall(feed)[0])
    assert "<" not in href and '"' not in href and href.startswith("/events/trace/%3Cscript%3E")
    page = client.page(href)
    assert page.status_code == 200
    for path, body in [
        ("/events", feed),
        (href, page.text),
        ("/events?partial=1", client.page("/events?partial=1").text),
    ]:
        assert "<script>window.__xss" not in body, path
        assert "<img src=x" not in body, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in body, path
    assert page.text.count('data-step="ride"') == 1 and "unreadable" in page.text
    metrics_text = client.get("/metrics").text
    assert 'bus_events_total{type="<script>window.__xss=1</script>\\"><img' in metrics_text


def test_the_trace_view_shows_the_opentelemetry_trace_and_links_it_when_configured(redis_url: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    settings = BusSettings(redis_url=redis_url, observe=ObserveSettings(trace_sample=1.0))
    traced = Bus(settings=settings, tracer_provider=TracerProvider())
    traced.dispatch("app").add("ping", lambda a: None)
    traced.subscribe_all()
    bus_id = traced.publish("ping", {})
    drain(traced, ["bus_incoming", "app_default"])
    trace_id = next(s.data["trace_id"] for s in read_trace(traced.redis, traced.keys, bus_id) if s.data.get("trace_id"))
    with Client(create_app(traced, WebSettings()), base_url="http://localhost") as c:
        page = c.page(f"/events/trace/{bus_id}").text
        assert f"OpenTelemetry trace <code>{trace_id}</code>" in page and "otel_trace_url</code> to link it" in page
    linked = WebSettings(otel_trace_url="https://jaeger.example.com/trace/{trace_id}")
    with Client(create_app(traced, linked), base_url="http://localhost") as c:
        page = c.page(f"/events/trace/{bus_id}").text
        assert (
            f'<a href="https://jaeger.example.com/trace/{trace_id}" rel="noopener noreferrer" target="_blank">' in page
        )
