"""Overview, its JSON, /metrics and /healthz, against a real worker."""

from __future__ import annotations

import re
import time
from typing import Any

import redis

from bus import Bus
from bus.keys import Keys
from bus.runtime.recovery import iso_time
from bus.web import WebSettings, create_app
from bus.web.rendering import duration, seconds, shorten
from tests.support.polling import wait_for
from tests.web.conftest import Client
from tests.web.helpers import declare_shop, failure, fill_queue, rider_job, running_worker


def test_overview_shows_queues_workers_counters_and_the_chart(client: Client, bus: Bus, r: redis.Redis) -> None:
    calls: list[dict[str, Any]] = []
    declare_shop(bus, calls)
    bus.subscribe_all()
    with running_worker(bus, ["bus_incoming", "shop_default"]) as worker:
        for i in range(3):
            bus.publish("order_placed", {"id": i})
        wait_for(lambda: len(calls) == 3)
        data = wait_for(lambda: (d := client.get("/api/overview").json())["counters"]["processed"] >= 6 and d)
        html = client.page("/").text
    assert data["counters"]["pending"] == 0
    [row] = [w for w in data["workers"] if w["id"] == worker.id]
    assert row["alive"] is True and row["queues"] == ["bus_incoming", "shop_default"] and row["pid"] > 0
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["shop_default"]["processed_hour"] == 3 and queues["bus_incoming"]["processed_hour"] == 3
    assert sum(data["throughput"]["processed"]) == 6 and len(data["throughput"]["minutes"]) == 60
    assert "Nothing looks stuck." in html
    assert worker.id in html and "alive" in html
    assert re.search(r'<rect class="processed"', html)
    assert 'id="count-processed">6<' in html


def test_overview_says_what_is_stuck(client: Client, bus: Bus, r: redis.Redis) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default") for _ in range(4)])
    r.rpush("resque:failed", failure())
    # A worker that stopped heartbeating long ago, still holding a job.
    dead = "otherhost:99:shop_default"
    r.hset("resque:bus:workers", dead, '{"host":"otherhost","pid":99,"queues":["shop_default"],"started_at":1}')
    r.hset("resque:workers:heartbeat", dead, iso_time(1_000))
    r.rpush(f"resque:inflight:{{resque:queue:shop_default}}:{dead}", rider_job("shop", "s", "e", "shop_default"))
    r.zadd("resque:delayed_queue_schedule", {"1000": 1000})
    r.rpush("resque:delayed:1000", "{}")
    html = client.page("/").text
    assert "4 job(s) wait in \u2068shop_default\u2069 and no live worker takes jobs from it." in html
    assert f"Worker \u2068{dead}\u2069 looks dead with 1 job(s) in flight" in html
    assert "1 delayed timestamp(s) are overdue" in html
    assert "1 job(s) are in the failed list." in html
    assert '<span class="pill bad">dead</span>' in html


def test_ruby_workers_registered_the_resque_way_are_listed(client: Client, r: redis.Redis) -> None:
    ruby = "rubyhost:42:critical,default"
    r.sadd("resque:workers", ruby)
    r.hset("resque:workers:heartbeat", ruby, iso_time(time.time()))
    r.set(
        f"resque:worker:{ruby}",
        '{"queue":"critical","run_at":"x","payload":{"class":"QueueBus::Worker","args":["{\\"bus_event_type\\":\\"ping\\"}"]}}',
    )
    [row] = client.get("/api/overview").json()["workers"]
    assert row["kind"] == "resque" and row["alive"] is True and row["queues"] == ["critical", "default"]
    assert row["current"] == ["ping"]


def test_the_live_region_is_served_alone(client: Client) -> None:
    full = client.page("/").text
    part = client.page("/?partial=1").text
    assert "<html" in full and "<html" not in part and 'id="workers-table"' in part


def test_metrics_in_prometheus_format(client: Client, bus: Bus, r: redis.Redis) -> None:
    fill_queue(r, 'we"ird\\q', [rider_job("a", "s", "e", "q")] * 2)
    r.set("resque:stat:processed", 12)
    r.set("resque:stat:failed", 3)
    r.rpush("resque:failed", failure(), failure())
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'bus_queue_pending{queue="we\\"ird\\\\q"} 2' in text
    assert "bus_processed_total 12" in text and "bus_failed_total 3" in text
    assert "bus_failed_entries 2" in text and "bus_in_flight 0" in text
    assert "# TYPE bus_processed_total counter" in text and "bus_delayed_jobs 0" in text
    assert 'bus_workers{state="alive"} 0' in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[a-z]+="(?:[^"\\]|\\.)*"\})? -?[0-9.e+]+', line), line


OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def test_metrics_in_openmetrics_when_the_scraper_asks(client: Client, r: redis.Redis) -> None:
    fill_queue(r, 'we"ird\\q', [rider_job("a", "s", "e", "q")] * 2)
    r.set("resque:stat:processed", 12)
    response = client.get("/metrics", headers={"accept": OPENMETRICS_ACCEPT})
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = response.text
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    assert "# TYPE bus_processed counter" in text and "bus_processed_total 12.0\n" in text
    assert 'bus_queue_pending{queue="we\\"ird\\\\q"} 2.0\n' in text
    assert client.get("/metrics").headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_healthz(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "redis": True}


def test_healthz_and_pages_when_redis_is_down() -> None:
    from bus.backend.embedded import free_port

    b = Bus(f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    with Client(create_app(b, WebSettings()), base_url="http://localhost") as c:
        assert c.get("/healthz").status_code == 503
        page = c.page("/")
        assert page.status_code == 503 and "Redis unreachable" in page.text and "secret-pw" not in page.text


def test_text_helpers() -> None:
    assert [duration(s) for s in (5, 61, 3600, 3660, 90000)] == ["5s", "1m 1s", "1h", "1h 1m", "1d 1h"]
    assert shorten("one\ntwo") == "one …" and shorten("x" * 10, 5) == "xxxx…"


def test_the_chart_caption_says_what_its_busiest_minute_counts(client: Client, r: redis.Redis) -> None:
    """Issue 24 item 14: the peak is processed + failed (the stacked bar), and the caption says so."""
    minute = int(time.time() // 60)
    keys = Keys()
    r.sadd("resque:queues", "q")
    r.hset(keys.throughput("q", "processed", minute // 60), str(minute), 5)
    r.hset(keys.throughput("q", "failed", minute // 60), str(minute), 3)
    assert "5 processed, 3 failed; busiest minute 8 processed or failed" in client.page("/").text


def test_delays_read_as_seconds() -> None:
    assert [seconds(v) for v in (0.30000000000000004, 2, 90.5, "soon")] == ["0.3 s", "2 s", "1m 30s", "soon"]
