"""100,000 jobs in a queue and 10,000 failures: pages render, paginate correctly, and are timed.

The timings are printed (and written to test-output/web-scale-timings.txt), not asserted:
machines are noisy.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
import redis

from bus.stores.queues import digest
from tests.bus.helpers import ROOT
from tests.web.conftest import Client
from tests.web.helpers import failure, fill_queue, rider_job

JOBS = 100_000
FAILURES = 10_000


def _timed(timings: list[tuple[str, float]], label: str, call: Callable[[], str]) -> str:
    started = time.perf_counter()
    text = call()
    timings.append((label, time.perf_counter() - started))
    return text


def _raw(r: redis.Redis, key: str, index: int) -> bytes:
    raw = r.lindex(key, index)
    assert isinstance(raw, bytes)
    return raw


def _indexes(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-index="(\d+)">', html)]


@pytest.fixture
def big(r: redis.Redis) -> list[tuple[str, float]]:
    timings: list[tuple[str, float]] = []
    started = time.perf_counter()
    template = rider_job("shop", "order_placed", "order_placed", "shop_big", id="@ID@", note="x" * 200)
    fill_queue(r, "shop_big", [template.replace("@ID@", str(i)) for i in range(JOBS)])
    timings.append((f"fill {JOBS:,} jobs (pipelined)", time.perf_counter() - started))
    started = time.perf_counter()
    kinds = [("shop_default", "shop", RuntimeError("card declined")), ("mail_default", "mail", KeyError("tpl"))]
    entries = []
    for i in range(FAILURES):
        queue, app, exc = kinds[0] if i % 4 else kinds[1]
        entries.append(failure(queue, app, exc, id=i))
    pipe = r.pipeline(transaction=False)
    for start in range(0, FAILURES, 1000):
        pipe.rpush("resque:failed", *entries[start : start + 1000])
    pipe.execute()
    timings.append((f"fill {FAILURES:,} failures (pipelined)", time.perf_counter() - started))
    return timings


def test_pages_stay_responsive_with_100k_jobs_and_10k_failures(
    client: Client, r: redis.Redis, big: list[tuple[str, float]], capsys: pytest.CaptureFixture[str]
) -> None:
    t = big
    client.page("/healthz")  # warm the connection
    overview = _timed(t, "overview /", lambda: client.page("/").text)
    assert 'data-field="pending">100,000<' in overview
    _timed(t, "overview live region", lambda: client.page("/?partial=1").text)
    data = json.loads(_timed(t, "/api/overview", lambda: client.get("/api/overview").text))
    assert data["counters"]["failed_entries"] == FAILURES
    metrics = _timed(t, "/metrics", lambda: client.get("/metrics").text)
    assert 'bus_queue_pending{queue="shop_big"} 100000' in metrics
    _timed(t, "queues", lambda: client.page("/queues").text)

    first = _timed(t, "queue page 1", lambda: client.page("/queues/shop_big").text)
    assert _indexes(first) == list(range(50)) and "1-50 of 100,000 jobs" in first and "page 1 of 2,000" in first
    middle = _timed(t, "queue page 1,000", lambda: client.page("/queues/shop_big?page=1000").text)
    assert _indexes(middle) == list(range(49_950, 50_000)) and "&#34;id&#34;: &#34;49950&#34;" in middle
    last = _timed(t, "queue page 2,000 (last)", lambda: client.page("/queues/shop_big?page=2000").text)
    assert _indexes(last) == list(range(99_950, 100_000))
    wide = _timed(
        t, "queue page 100 of 500 per page", lambda: client.page("/queues/shop_big?page=100&per_page=500").text
    )
    assert _indexes(wide) == list(range(49_500, 50_000))

    deep = _raw(r, "resque:queue:shop_big", 99_999)
    removed = _timed(
        t,
        "remove job #99,999",
        lambda: client.submit("/queues/shop_big/remove", {"ref": f"99999:{digest(deep)}", "confirm": "yes"}).text,
    )
    assert removed == "" and r.llen("resque:queue:shop_big") == JOBS - 1

    failed = _timed(t, "failed page 1 (+ counts)", lambda: client.page("/failed").text)
    assert "1-50 of 10,000 failures" in failed and "page 1 of 200" in failed
    assert re.search(r'<code>RuntimeError</code></a></td><td class="num">7,500<', failed)
    refs = re.findall(r'name="ref" value="(\d+):', failed)
    assert [int(i) for i in refs] == list(range(9_999, 9_949, -1))
    _timed(t, "failed page 1 again (counts cached)", lambda: client.page("/failed").text)
    last_failed = _timed(t, "failed page 200 (last)", lambda: client.page("/failed?page=200").text)
    assert [int(i) for i in re.findall(r'name="ref" value="(\d+):', last_failed)] == list(range(49, -1, -1))
    filtered = _timed(t, "failed filtered by exception", lambda: client.page("/failed?exception=KeyError&page=3").text)
    assert "101-150 of 2,500 failures matching" in filtered
    searched = _timed(t, "failed text search", lambda: client.page("/failed?q=%22id%22:1234").text)
    assert "1-1 of 1 failures matching" in searched
    ref = re.findall(r'href="/failed/entry/([0-9a-f:]+)"', failed)[0]
    _timed(t, "failure detail", lambda: client.page(f"/failed/entry/{ref}").text)

    selection = [("ref", f"{i}:{digest(_raw(r, 'resque:failed', i))}") for i in range(9_950, 10_000)]
    _timed(t, "retry a page selection (50)", lambda: client.submit("/failed/retry", selection).text)
    assert r.llen("resque:failed") == FAILURES - 50
    _timed(
        t,
        "retry all KeyError (2,500)",
        lambda: client.submit("/failed/retry", {"scope": "matching", "exception": "KeyError", "confirm": "yes"}).text,
    )
    assert r.llen("resque:failed") == FAILURES - 50 - 2_500 + sum(1 for i in range(9_950, 10_000) if i % 4 == 0)
    _timed(t, "clear the 100k queue", lambda: client.submit("/queues/shop_big/clear", {"confirm": "yes"}).text)
    assert r.llen("resque:queue:shop_big") == 0

    report = "\n".join(f"{label:<40} {seconds * 1000:9.1f} ms" for label, seconds in t)
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "web-scale-timings.txt").write_text(report + "\n")
    with capsys.disabled():
        print(f"\ndashboard timings, {JOBS:,} jobs and {FAILURES:,} failures:\n{report}")
