"""Delayed: what is scheduled and when, and unscheduling one entry in resque-scheduler's layout."""

from __future__ import annotations

import re
import time

import redis

from bus.keys import Keys
from bus.stores.delayed import Delayed
from bus.stores.queues import JobRef, digest
from tests.web.conftest import Client
from tests.web.helpers import delayed_job, schedule


def test_the_schedule_is_listed_earliest_first(client: Client, r: redis.Redis) -> None:
    soon, later = int(time.time()) + 120, 2_000_000_000
    schedule(r, later, delayed_job("newsletter", week=1))
    schedule(r, soon, delayed_job("reminder", user=5))
    schedule(r, soon, delayed_job("reminder", user=6))
    html = client.page("/delayed").text
    assert ">3</strong> scheduled job(s) at 2 time(s)" in html
    assert html.index("reminder") < html.index("newsletter")
    assert "2033-05-18 03:33:20 UTC" in html and "in 1m" in html
    assert "&#34;user&#34;: 6" in html and "bus_incoming" in html
    assert client.get("/api/overview").json()["counters"]["delayed"] == 3


def test_many_jobs_at_one_time_get_their_own_page(client: Client, r: redis.Redis) -> None:
    ts = 2_000_000_000
    for i in range(25):
        schedule(r, ts, delayed_job("bulk", n=i))
    html = client.page("/delayed").text
    assert "all 25 jobs at this time" in html and html.count("Unschedule…") == 10
    page = client.page(f"/delayed/{ts}?page=3&per_page=10").text
    assert "21-25 of 25 jobs" in page and "&#34;n&#34;: 24" in page


def test_unschedule_an_entry(client: Client, r: redis.Redis) -> None:
    ts = int(time.time()) + 3600
    keep, drop = delayed_job("keep"), delayed_job("drop")
    schedule(r, ts, keep)
    schedule(r, ts, drop)
    ref = f"1:{digest(drop.encode())}"
    asked = client.submit("/delayed/remove", {"ts": ts, "ref": ref})
    assert "Unschedule this event?" in asked.text and r.llen(f"resque:delayed:{ts}") == 2
    client.submit("/delayed/remove", {"ts": ts, "ref": ref, "confirm": "yes"})
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [keep.encode()]
    assert not r.exists(f"resque:timestamps:{drop}") and r.smembers(f"resque:timestamps:{keep}") == {
        f"delayed:{ts}".encode()
    }
    assert r.zscore("resque:delayed_queue_schedule", str(ts)) == ts
    client.submit("/delayed/remove", {"ts": ts, "ref": f"0:{digest(keep.encode())}", "confirm": "yes"})
    assert not r.exists(f"resque:delayed:{ts}") and r.zcard("resque:delayed_queue_schedule") == 0
    assert "Nothing is scheduled." in client.page("/delayed").text
    again = client.submit("/delayed/remove", {"ts": ts, "ref": ref, "confirm": "yes"})
    assert "no longer scheduled" in client.page(again.headers["location"]).text
    bad = client.submit("/delayed/remove", {"ts": "x", "ref": ref, "confirm": "yes"})
    assert "No such scheduled entry." in client.page(bad.headers["location"]).text


def test_a_job_scheduled_twice_at_one_time_keeps_its_timestamps_entry_until_both_go(r: redis.Redis) -> None:
    ts, job = 2_000_000_000, delayed_job("twice")
    schedule(r, ts, job)
    schedule(r, ts, job)
    store = Delayed(r, Keys())
    ref = JobRef(0, digest(job.encode()))
    assert store.remove_ref(ts, ref)
    assert r.llen(f"resque:delayed:{ts}") == 1 and r.sismember(f"resque:timestamps:{job}", f"delayed:{ts}")
    assert store.remove_ref(ts, ref)
    assert not r.exists(f"resque:timestamps:{job}") and not r.exists("resque:delayed_queue_schedule")


def test_overdue_times_are_flagged(client: Client, r: redis.Redis) -> None:
    schedule(r, int(time.time()) - 600, delayed_job("late"))
    html = client.page("/delayed").text
    assert "1 time(s) are overdue: is a scheduler running?" in html
    assert re.search(r'class="slot warn"', html)
