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
    assert (
        "&#34;user&#34;: 6" in client.page(f"/delayed/{soon}").text
        and "bus_incoming" in client.page(f"/delayed/{soon}").text
    )
    assert client.get("/api/overview").json()["counters"]["delayed"] == 3


def test_one_row_per_timestamp_with_its_count_first_event_types_and_remove(client: Client, r: redis.Redis) -> None:
    """Issue 24 item 12: like resque-web's scheduler tab, not one table per timestamp."""
    soon, later = int(time.time()) + 120, 2_000_000_000
    for event_type in ("reminder", "reminder", "invoice", "survey", "nudge"):
        schedule(r, soon, delayed_job(event_type))
    schedule(r, later, delayed_job("newsletter"))
    html = client.page("/delayed").text
    rows = re.findall(r'<tr class="slot[^"]*" data-timestamp="(\d+)">(.*?)</tr>', html, re.S)
    assert [int(ts) for ts, _ in rows] == [soon, later] and html.count("<table") == 1
    first = rows[0][1]
    assert (
        '<td class="num">5</td>' in first
        and "<code>reminder</code>, <code>invoice</code>, <code>survey</code>" in first
    )
    assert "nudge" not in first and "and more…" in first and f'href="/delayed/{soon}"' in first
    asked = client.submit("/delayed/remove-time", {"ts": soon})
    assert "Unschedule 5 job(s)?" in asked.text and r.llen(f"resque:delayed:{soon}") == 5
    done = client.submit("/delayed/remove-time", {"ts": soon, "confirm": "yes"})
    assert "Unscheduled 5 job(s)" in client.page(done.headers["location"]).text
    assert not r.exists(f"resque:delayed:{soon}") and r.zrange("resque:delayed_queue_schedule", 0, -1) == [
        b"2000000000"
    ]
    assert not r.exists("resque:timestamps:" + delayed_job("reminder"))
    gone = client.submit("/delayed/remove-time", {"ts": soon, "confirm": "yes"})
    assert "Nothing is scheduled at that time." in client.page(gone.headers["location"]).text


def test_many_jobs_at_one_time_get_their_own_page(client: Client, r: redis.Redis) -> None:
    ts = 2_000_000_000
    for i in range(25):
        schedule(r, ts, delayed_job("bulk", n=i))
    html = client.page("/delayed").text
    assert "Unschedule 25…" in html and f'href="/delayed/{ts}"' in html
    assert client.page(f"/delayed/{ts}").text.count("Unschedule…") == 25
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
