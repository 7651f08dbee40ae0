"""Queues: depths, a queue's jobs decoded a page at a time, removing a job, clearing a queue."""

from __future__ import annotations

import re
import time

import pytest
import redis

from bus import Bus
from bus.stores.queues import digest
from tests.web.conftest import Client
from tests.web.helpers import fill_queue, rider_job


def _indexes(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-index="(\d+)">', html)]


def test_queues_lists_depths(client: Client, r: redis.Redis) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "s", "e", "shop_default")] * 7)
    r.zadd("resque:bus:retry:{resque:queue:shop_default}", {rider_job("shop", "s", "r", "shop_default"): 1})
    html = client.page("/queues").text
    assert 'href="/queues/shop_default"' in html
    row = html.split('data-queue="shop_default"')[1].split("</tr>")[0]
    assert 'data-field="pending">7<' in row and 'data-field="retrying">1<' in row


def test_a_queue_page_decodes_and_pretty_prints_jobs(client: Client, r: redis.Redis) -> None:
    fill_queue(r, "shop_default", [rider_job("shop", "order_placed", "order_placed", "shop_default", id=41, note="hi")])
    r.rpush("resque:queue:shop_default", b"not json \xff")
    html = client.page("/queues/shop_default").text
    assert "<code>order_placed</code>" in html and "<bdi>shop</bdi> / <bdi>order_placed</bdi>" in html
    assert "  &#34;id&#34;: 41,\n  &#34;note&#34;: &#34;hi&#34;" in html  # indented JSON
    assert "unreadable: job is not valid UTF-8" in html and "not json" in html
    assert "2</strong> pending" in html


def test_a_queue_page_paginates(client: Client, r: redis.Redis) -> None:
    fill_queue(r, "big", [rider_job("a", "s", "e", "big", n=i) for i in range(120)])
    first = client.page("/queues/big").text
    assert _indexes(first) == list(range(50)) and "1-50 of 120 jobs" in first and "page 1 of 3" in first
    assert _indexes(client.page("/queues/big?page=3").text) == list(range(100, 120))
    assert _indexes(client.page("/queues/big?page=99").text) == list(range(100, 120))  # kept within the list
    assert _indexes(client.page("/queues/big?page=2&per_page=10").text) == list(range(10, 20))
    assert _indexes(client.page("/queues/big?page=x").text) == list(range(50))


def test_unknown_queue_is_404(client: Client) -> None:
    response = client.page("/queues/nope")
    assert response.status_code == 404 and "There is no queue \u2068nope\u2069." in response.text


def test_remove_a_job_even_after_the_queue_moved(client: Client, r: redis.Redis) -> None:
    jobs = [rider_job("a", "s", "e", "q", n=i) for i in range(10)]
    fill_queue(r, "q", jobs)
    ref = f"7:{digest(jobs[7].encode())}"
    asked = client.submit("/queues/q/remove", {"ref": ref})
    assert "Remove this job?" in asked.text and r.llen("resque:queue:q") == 10
    r.lpop("resque:queue:q", 3)  # a worker took three jobs meanwhile: job 7 is now at 4
    done = client.submit("/queues/q/remove", {"ref": ref, "confirm": "yes"})
    assert done.status_code == 303
    assert r.lrange("resque:queue:q", 0, -1) == [j.encode() for j in jobs[3:7] + jobs[8:]]
    assert "Removed a job from \u2068q\u2069." in client.page("/queues/q").text
    gone = client.submit("/queues/q/remove", {"ref": ref, "confirm": "yes"})
    assert "no longer in the queue" in client.page(gone.headers["location"]).text
    assert client.submit("/queues/q/remove", {"ref": "junk", "confirm": "yes"}).status_code == 303


def test_clear_a_queue_after_confirming(client: Client, r: redis.Redis) -> None:
    fill_queue(r, "q", [rider_job("a", "s", "e", "q")] * 5)
    asked = client.submit("/queues/q/clear")
    assert "Delete all 5 job(s) waiting in \u2068q\u2069." in asked.text and r.llen("resque:queue:q") == 5
    assert 'action="/queues/q/clear"' in asked.text and 'href="/queues/q"' in asked.text
    done = client.submit("/queues/q/clear", {"confirm": "yes"})
    assert done.status_code == 303 and r.llen("resque:queue:q") == 0
    assert "Cleared \u2068q\u2069: removed 5 job(s)." in client.page("/queues/q").text


def test_in_flight_and_retrying_jobs_are_shown(client: Client, r: redis.Redis, bus: Bus) -> None:
    worker = "h:1:q"
    r.hset("resque:bus:workers", worker, '{"host":"h","pid":1,"queues":["q"],"started_at":1}')
    r.rpush("resque:inflight:{resque:queue:q}:h:1:q", rider_job("a", "s", "running_now", "q"))
    r.zadd("resque:bus:retry:{resque:queue:q}", {rider_job("a", "s", "again_later", "q"): time.time() + 90})
    r.sadd("resque:queues", "q")
    html = client.page("/queues/q").text
    assert "In flight" in html and "running_now" in html and worker in html
    assert "Waiting to be retried" in html and "again_later" in html and "in 1m" in html


@pytest.mark.parametrize("name", ["shop/clear", "shop/remove", "a/b/clear"])
def test_a_queue_named_like_an_action_can_be_opened_and_cleared(client: Client, r: redis.Redis, name: str) -> None:
    """Ruby and Node apps may name a queue ``x/clear``: its link opens it, its Clear button clears it."""
    fill_queue(r, name, [rider_job("a", "s", "e", name)] * 2)
    fill_queue(r, "shop", [rider_job("a", "s", "e", "shop")])
    link = client.page("/queues").text.split(f'data-queue="{name}"')[1].split('href="')[1].split('"')[0]
    page = client.page(link)
    assert page.status_code == 200 and "2</strong> pending" in page.text
    action = page.text.split('data-confirm="Delete every job')[0].rsplit('action="', 1)[1].split('"')[0]
    assert client.submit(action, {"confirm": "yes"}).status_code == 303
    assert r.llen(f"resque:queue:{name}") == 0 and r.llen("resque:queue:shop") == 1
    assert client.page("/queues/shop/clear").status_code == 405  # the action itself still refuses GET
