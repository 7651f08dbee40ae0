"""Putting things on the bus for the dashboard to show: apps, failures, delayed jobs."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from bus import Bus, Retry
from bus.pipeline.envelope import dumps, encode_attributes, encode_job
from bus.runtime.worker import Worker
from bus.stores.failures import failure_entry
from tests.bus.helpers import FAST
from tests.support.polling import wait_for

XSS = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'


def declare_shop(b: Bus, calls: list[dict[str, Any]], *, fail: list[bool] | None = None) -> None:
    """An app ``shop``: ``order_placed`` records calls; it raises while ``fail[0]`` is true."""
    shop = b.dispatch("shop")
    toggle = fail if fail is not None else [False]

    @shop.subscribe("order_placed", retry=Retry(max_retries=0))
    def placed(attributes: dict[str, Any]) -> None:
        if toggle[0]:
            raise RuntimeError(f"payment service down for order {attributes.get('id')}")
        calls.append(attributes)

    @shop.subscribe("user_events", matcher={"bus_event_type": re.compile(r"^user_")}, queue="critical")
    def users(attributes: dict[str, Any]) -> None:
        calls.append(attributes)


def rider_job(app: str, sub: str, event_type: str, queue: str, **attrs: Any) -> str:
    """A job as the driver puts it on an app's queue."""
    now = int(time.time())
    bus_hash = {
        "bus_driven_at": now,
        "bus_rider_queue": queue,
        "bus_rider_app_key": app,
        "bus_rider_sub_key": sub,
        "bus_rider_class_name": "::QueueBus::Rider",
        "bus_published_at": now,
        "bus_event_type": event_type,
        "bus_id": f"{now}-{abs(hash((app, sub, event_type, dumps(attrs)))) % 10**8}",
        "bus_class_proxy": "::QueueBus::Rider",
        **attrs,
    }
    return encode_job(encode_attributes(bus_hash))


def failure(queue: str = "shop_default", app: str = "shop", exc: BaseException | None = None, **attrs: Any) -> str:
    """A failed-list entry in Resque's format for a rider job of ``app``."""
    job = rider_job(app, "order_placed", "order_placed", queue, **attrs)
    try:
        raise (exc or RuntimeError("payment service down")).with_traceback(None)
    except BaseException as raised:  # raised, so it has a traceback
        return failure_entry(json.loads(job), raised, queue=queue, worker_id="host:1:" + queue, now=time.time())


def fill_queue(r: redis.Redis, queue: str, jobs: list[str], *, chunk: int = 10_000) -> None:
    r.sadd("resque:queues", queue)
    for start in range(0, len(jobs), chunk):
        r.rpush(f"resque:queue:{queue}", *jobs[start : start + chunk])


def schedule(r: redis.Redis, timestamp: int, job: str) -> None:
    """A delayed job as resque-scheduler stores it."""
    pipe = r.pipeline(transaction=True)
    pipe.rpush(f"resque:delayed:{timestamp}", job)
    pipe.sadd(f"resque:timestamps:{job}", f"delayed:{timestamp}")
    pipe.zadd("resque:delayed_queue_schedule", {str(timestamp): timestamp})
    pipe.execute()


def delayed_job(event_type: str, **attrs: Any) -> str:
    bus_hash = {"bus_event_type": event_type, "bus_class_proxy": "QueueBus::Publisher", "bus_id": "d-1", **attrs}
    return '{"class":"QueueBus::Worker","args":[' + dumps(encode_attributes(bus_hash)) + '],"queue":"bus_incoming"}'


@contextmanager
def running_worker(b: Bus, queues: list[str]) -> Iterator[Worker]:
    """A real worker in a thread, registered before the block runs, stopped after it."""
    worker = b.worker(queues, install_signals=False, settings=FAST)
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        wait_for(lambda: b.redis.hexists(b.keys.bus_workers, worker.id))
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=10)
