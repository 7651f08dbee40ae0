"""Failed: list with filters and counts, details, retry and remove one, a selection, or all."""

from __future__ import annotations

import json
import re
from typing import Any

import redis

from bus import Bus, Retry
from bus.keys import Keys
from bus.stores.failures import Failures
from bus.stores.queues import digest
from bus.web.failed import refs_of
from tests.support.polling import wait_for
from tests.web.conftest import Client
from tests.web.helpers import declare_shop, failure, running_worker


def _seed(r: redis.Redis) -> None:
    for i in range(6):
        r.rpush("resque:failed", failure("shop_default", "shop", RuntimeError(f"card declined {i}"), id=i))
    for i in range(3):
        r.rpush("resque:failed", failure("mail_default", "mail", KeyError(f"template {i}"), id=100 + i))


def _refs(html: str) -> list[str]:
    return re.findall(r'name="ref" value="(\d+:[0-9a-f]{40})"', html)


def test_the_list_shows_exception_message_backtrace_queue_app_time(client: Client, r: redis.Redis) -> None:
    _seed(r)
    html = client.page("/failed").text
    assert "1-9 of 9 failures" in html
    assert "<code>RuntimeError</code>" in html and "card declined 5" in html
    assert "<code>KeyError</code>" in html and "mail_default" in html
    assert "helpers.py:" in html and "in `failure&#39;" in html  # the backtrace, Ruby style
    assert re.search(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC", html)
    assert [int(ref.split(":")[0]) for ref in _refs(html)] == list(range(8, -1, -1))  # newest first
    oldest = client.page("/failed?order=oldest").text
    assert [int(ref.split(":")[0]) for ref in _refs(oldest)] == list(range(9))


def test_counts_by_exception_app_and_queue(client: Client, r: redis.Redis) -> None:
    _seed(r)
    html = client.page("/failed").text
    side = html.split('<aside class="side-col"')[1]
    assert re.search(r"<code>RuntimeError</code></a></td><td class=\"num\">6<", side)
    assert re.search(r"><bdi>mail</bdi></a></td><td class=\"num\">3<", side)
    assert 'href="?exception=KeyError"' in side


def test_filters(client: Client, r: redis.Redis) -> None:
    _seed(r)
    by_exc = client.page("/failed?exception=KeyError").text
    assert "1-3 of 3 failures matching" in by_exc and "card declined" not in by_exc.split("<aside")[0]
    by_app = client.page("/failed?app=shop&per_page=4&page=2").text
    assert "5-6 of 6 failures matching" in by_app
    assert [int(ref.split(":")[0]) for ref in _refs(by_app)] == [1, 0]
    by_text = client.page("/failed?q=DECLINED 3").text
    assert "1-1 of 1 failures matching" in by_text and "card declined 3" in by_text
    assert "No failures match." in client.page("/failed?queue=nope").text


def test_a_failure_in_detail(client: Client, r: redis.Redis) -> None:
    _seed(r)
    ref = _refs(client.page("/failed").text)[0]
    html = client.page(f"/failed/entry/{ref}").text
    assert "Failure #8" in html and "KeyError" in html and "template 2" in html
    assert "&#34;id&#34;: 102" in html and "host:1:mail_default" in html
    r.lpop("resque:failed")  # the entry moved to index 7: found by its digest
    assert "Failure #7" in client.page(f"/failed/entry/{ref}").text
    assert client.page(f"/failed/entry/0:{'0' * 40}").status_code == 404


def test_retry_one_from_its_page_and_watch_it_succeed(client: Client, bus: Bus, r: redis.Redis) -> None:
    calls: list[dict[str, Any]] = []
    broken = [True]
    declare_shop(bus, calls, fail=broken)
    bus.subscribe_all()
    with running_worker(bus, ["bus_incoming", "shop_default"]):
        bus.publish("order_placed", {"id": 7})
        wait_for(lambda: r.llen("resque:failed") == 1)
        [ref] = _refs(client.page("/failed").text)
        assert "payment service down for order 7" in client.page(f"/failed/entry/{ref}").text
        broken[0] = False
        done = client.submit("/failed/retry", {"ref": ref})  # retrying one needs no confirmation
        assert done.status_code == 303
        wait_for(lambda: calls)
    assert calls[0]["id"] == 7 and r.llen("resque:failed") == 0
    assert "Retried 1 failure(s)." in client.page("/failed").text


def test_retry_a_selection(client: Client, r: redis.Redis) -> None:
    _seed(r)
    refs = _refs(client.page("/failed?app=mail").text)
    assert len(refs) == 3
    done = client.submit("/failed/retry", [("ref", refs[0]), ("ref", refs[2]), ("app", "mail")])
    assert done.headers["location"] == "/failed?app=mail"
    assert r.llen("resque:failed") == 7 and r.llen("resque:queue:mail_default") == 2
    retried = [json.loads(json.loads(j)["args"][0])["id"] for j in r.lrange("resque:queue:mail_default", 0, -1)]
    assert sorted(retried) == [100, 102]
    assert "Retried 2 failure(s)." in client.page(done.headers["location"]).text


def test_remove_a_selection_needs_confirming(client: Client, r: redis.Redis) -> None:
    _seed(r)
    refs = _refs(client.page("/failed").text)[:2]
    asked = client.submit("/failed/remove", [("ref", refs[0]), ("ref", refs[1])])
    assert "Remove 2 failure(s)?" in asked.text and r.llen("resque:failed") == 9
    assert asked.text.count('name="ref"') == 2
    client.submit("/failed/remove", [("ref", refs[0]), ("ref", refs[1]), ("confirm", "yes")])
    assert r.llen("resque:failed") == 7
    stale = client.submit("/failed/remove", [("ref", refs[0]), ("confirm", "yes")])
    assert "had changed" in client.page(stale.headers["location"]).text


def test_retry_all_matching_leaves_others_and_new_failures_alone(client: Client, r: redis.Redis) -> None:
    _seed(r)
    asked = client.submit("/failed/retry", {"scope": "matching", "app": "shop"})
    assert "Retry 6 failure(s)?" in asked.text
    client.submit("/failed/retry", {"scope": "matching", "app": "shop", "confirm": "yes"})
    assert r.llen("resque:queue:shop_default") == 6 and r.llen("resque:failed") == 3
    assert all(b"mail_default" in e for e in r.lrange("resque:failed", 0, -1))


def test_remove_all_and_remove_all_matching(client: Client, r: redis.Redis) -> None:
    _seed(r)
    client.submit("/failed/remove", {"scope": "matching", "exception": "KeyError", "confirm": "yes"})
    assert r.llen("resque:failed") == 6
    asked = client.submit("/failed/remove", {"scope": "matching"})
    assert "Remove 6 failure(s)?" in asked.text and "gone for good" in asked.text
    client.submit("/failed/remove", {"scope": "matching", "confirm": "yes"})
    assert r.llen("resque:failed") == 0


def test_retry_all_runs_each_job_once_while_they_fail_again(client: Client, bus: Bus, r: redis.Redis) -> None:
    """Retried jobs that fail again are appended while "retry all" runs; they are not retried twice."""
    runs: list[int] = []
    shop = bus.dispatch("shop")

    @shop.subscribe("order_placed", retry=Retry(max_retries=0))
    def placed(attributes: dict[str, Any]) -> None:
        runs.append(attributes["id"])
        raise RuntimeError("still broken")

    r.rpush("resque:failed", *[failure(id=i) for i in range(1500)])
    with running_worker(bus, ["shop_default"]):
        client.submit("/failed/retry", {"scope": "matching", "confirm": "yes"})
        wait_for(lambda: r.llen("resque:failed") == 1500 and r.llen("resque:queue:shop_default") == 0, timeout=30)
    assert sorted(runs) == list(range(1500))
    assert "Retried 1,500 failure(s)." in client.page("/failed").text


def test_selected_checks_the_entry_is_still_there(r: redis.Redis) -> None:
    entry = failure()
    r.rpush("resque:failed", entry)
    failures = Failures(r, Keys())
    assert [f.index for f in failures.select(refs_of([f"0:{digest(entry.encode())}"]))] == [0]
    assert failures.select(refs_of([f"0:{'1' * 40}", "nonsense", f"5:{digest(entry.encode())}"])) == []


def _lrange_calls(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))


def test_a_filtered_page_polled_live_is_not_rescanned(client: Client, r: redis.Redis) -> None:
    """Issue 24 item 13: every tab polls every 2 s; a filter scans the whole list each time."""
    r.rpush("resque:failed", *[failure(exc=KeyError("k") if i % 3 else RuntimeError("r"), id=i) for i in range(600)])
    url = "/failed?exception=KeyError&partial=1"
    assert "400" in client.page(url).text
    before = _lrange_calls(r)
    for _ in range(3):
        assert "400" in client.page(url).text
    assert _lrange_calls(r) == before  # no scan, while the list did not change or for a few seconds
    r.rpush("resque:failed", failure(exc=KeyError("new")))
    assert "401" in client.page("/failed?exception=KeyError").text  # a page drawn anew sees the change
    r.rpush("resque:failed", failure(exc=KeyError("newer")))
    before = _lrange_calls(r)
    client.page(url)
    assert _lrange_calls(r) == before  # a live refresh may be a few seconds behind


def test_every_failure_links_to_its_events_trace(client: Client, r: redis.Redis) -> None:
    """Issue 24 item 11."""
    r.rpush("resque:failed", failure(bus_id="1764290000-ab12"), failure(bus_id="1764290000-cd34"))
    rows = client.page("/failed").text.split('<tr data-index="')[1:]
    traced = [row for row in rows if 'href="/events/trace/1764290000-ab12"' in row]
    assert len(traced) == 1 and len(rows) == 2 and 'href="/events/trace/1764290000-cd34"' in rows[0]
    ref = traced[0].split('name="ref" value="')[1].split('"')[0]
    entry = client.page(f"/failed/entry/{ref}").text
    assert '<dt>Event</dt><dd><a href="/events/trace/1764290000-ab12">1764290000-ab12</a>' in entry
