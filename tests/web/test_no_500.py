"""Issue 24, items 1-4 and 6: the URLs and stored data that once answered 500, one test each.

Numbers from paths and forms are read by one strict parser (ASCII digits, bounded);
what is read from Redis is shown as invalid when it cannot be shown, and the page renders.
"""

from __future__ import annotations

import time

import pytest
import redis

from bus.stores.queues import digest
from tests.web.conftest import Client
from tests.web.helpers import delayed_job, failure, fill_queue, rider_job, schedule

SHA = "0" * 40
DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def job(r: redis.Redis) -> str:
    job = rider_job("shop", "order_placed", "order_placed", "shop_default", id=1)
    fill_queue(r, "shop_default", [job])
    return job


@pytest.mark.parametrize("index", ["²", "٣", "99999999999999999999", "9" * 24, "-1", "0x1", " 1", ""])
def test_a_hostile_job_reference_is_not_found_rather_than_a_crash(
    client: Client, r: redis.Redis, job: str, index: str
) -> None:
    r.rpush("resque:failed", failure())
    ref = f"{index}:{digest(job.encode())}"
    assert client.page(f"/failed/entry/{ref}").status_code == 404
    removed = client.submit("/queues/shop_default/remove", {"ref": ref, "confirm": "yes"})
    assert removed.status_code == 303 and r.llen("resque:queue:shop_default") == 1
    retried = client.submit("/failed/retry", {"ref": ref})
    assert retried.status_code == 303 and r.llen("resque:failed") == 1


@pytest.mark.parametrize("ts", ["99999999999999999999", "9" * 5000, "-99999999999999999999"])
def test_a_timestamp_nothing_can_be_scheduled_at_is_a_404_page(client: Client, ts: str) -> None:
    assert client.page(f"/delayed/{ts}").status_code == 404


def test_a_timestamp_past_year_9999_shows_as_an_invalid_time(client: Client) -> None:
    page = client.page("/delayed/253402300800")
    assert page.status_code == 200 and "invalid time" in page.text


@pytest.mark.parametrize("ts", ["99999999999999999999", "²", "253402300800", "1.5", ""])
def test_unscheduling_at_a_hostile_timestamp_says_there_is_no_such_entry(client: Client, ts: str) -> None:
    answer = client.submit("/delayed/remove", {"ts": ts, "ref": f"0:{SHA}", "confirm": "yes"})
    assert answer.status_code == 303 and answer.headers["location"] == "/delayed"


@pytest.mark.parametrize("ts", [253402300800, 10**15, -(10**13)])
def test_a_stored_timestamp_no_date_can_show_reads_invalid_and_the_page_renders(
    client: Client, r: redis.Redis, ts: int
) -> None:
    schedule(r, ts, delayed_job("from_far_away"))
    schedule(r, int(time.time()) + 60, delayed_job("order_placed"))
    page = client.page("/delayed")
    assert page.status_code == 200
    assert "invalid time" in page.text and "from_far_away" in page.text and "order_placed" in page.text
    assert client.page("/").status_code == 200
    assert client.page(f"/delayed/{ts}").status_code == 200
    ref = client.page(f"/delayed/{ts}").text.split('name="ref" value="', 1)[1].split('"')[0]
    client.submit("/delayed/remove", {"ts": str(ts), "ref": ref, "confirm": "yes"})
    assert not r.exists(f"resque:delayed:{ts}")


@pytest.mark.parametrize("page", ["999999999999999999999", "9223372036854775808", "²", "-5", "9" * 5000])
def test_a_page_past_every_bound_shows_the_last_page(client: Client, r: redis.Redis, page: str) -> None:
    r.rpush("resque:failed", *[failure(id=i) for i in range(3)])
    for order in ("oldest", "newest"):
        answer = client.page(f"/failed?order={order}&page={page}&per_page={page}")
        assert answer.status_code == 200 and "payment service down" in answer.text


@pytest.mark.parametrize(
    "params",
    [
        "before=99999999999999999999-0",
        "after=99999999999999999999-0",
        "before=٣-٣",
        "after=²-1",
        "before=1-" + "9" * 30,
    ],
)
def test_a_hostile_stream_position_reads_as_the_newest_page(client: Client, params: str) -> None:
    assert client.page(f"/events?{params}").status_code == 200


def test_deeply_nested_json_in_who_gets_this_event_is_a_clear_error(client: Client) -> None:
    answer = client.submit("/apps/who-gets", {"event_type": "order_placed", "event": DEEP})
    assert answer.status_code == 400 and "nested too deeply" in answer.text
