"""``publish``: one event per call against a raw single-RPUSH loop; ``publish_batch``: the
batch API against raw pipelined RPUSH.

The loops take turns in chunks of events (raw, bus, peers, raw, bus, ...), each timed on
its own and summed, so a change of load on the shared machine hits every loop alike and
the ratios compare figures taken within the same seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from bench import systems
from bench.harness import Bench
from bench.systems import LABELS, Publisher
from bench.workload import EVENT_TYPE, INCOMING, bench_bus, event

CHUNK = 1000
BATCH_SIZES = (100, 1000)
RAW_PIPELINE = 1000
WARM_UP = 200
RAW_LOOP = "raw redis-py RPUSH loop"
RAW_PIPELINED = f"raw redis-py pipelined RPUSH (x{RAW_PIPELINE})"
KEY = f"resque:queue:{INCOMING}"

Loop = Callable[[Sequence[dict[str, Any]]], None]


def sample_job() -> bytes:
    """A job exactly as the bus writes it for one benchmark event: the raw loops push it."""
    bus = bench_bus("redis://127.0.0.1:1/0")
    return bus.publisher.job(bus.publisher.build(EVENT_TYPE, event(1))).encode()


def take_turns(loops: dict[str, Loop], events: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Run every loop over ``events``, CHUNK events at a time in turn; events/s of each."""
    spent = dict.fromkeys(loops, 0.0)
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        for name, loop in loops.items():
            started = time.perf_counter()
            loop(chunk)
            spent[name] += time.perf_counter() - started
    return {name: len(events) / seconds for name, seconds in spent.items()}


def run_publish(bench: Bench) -> None:
    n, report = bench.options.events, bench.report
    events = [event(i) for i in range(n)]
    job = sample_job()
    for rep in range(bench.options.repeat):
        bench.flush()
        client = redis.Redis.from_url(bench.url)
        client.ping()
        names = ["bus", *(p for p in bench.peers if rep < bench.repeats(p))]
        publishers: dict[str, Publisher] = {name: systems.get(name).publisher(bench.url) for name in names}
        loops: dict[str, Loop] = {RAW_LOOP: _raw_loop(client, job)}
        for name, publisher in publishers.items():
            for attributes in events[:WARM_UP]:
                publisher.publish(attributes)
            loops[f"{LABELS[name]} publish()"] = _loop(publisher)
        rates = take_turns(loops, events)
        for name, rate in rates.items():
            report.add("publish", name, rate, "ev/s")
        for publisher in publishers.values():
            publisher.close()
        client.close()
        shown = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
        bench.log(f"publish {rep + 1}/{bench.options.repeat}: {shown} ev/s")
    bus_metric = report.metrics["publish/bus publish()"]
    bus_metric.target = ">= 0.9x raw loop"
    raw = report.metrics[f"publish/{RAW_LOOP}"]
    report.compare(bus_metric, raw, "raw loop")
    for name in bench.peers:
        peer = report.metrics.get(f"publish/{LABELS[name]} publish()")
        report.compare(peer, raw, "raw loop")
        report.compare(bus_metric, peer, LABELS[name])
    bench.flush()


def run_publish_batch(bench: Bench) -> None:
    n, report = bench.options.events, bench.report
    events = [event(i) for i in range(n)]
    job = sample_job()
    for rep in range(bench.options.repeat):
        bench.flush()
        client = redis.Redis.from_url(bench.url)
        client.ping()
        publisher = systems.get("bus").publisher(bench.url)
        publisher.publish_batch(events[:WARM_UP])
        loops: dict[str, Loop] = {RAW_PIPELINED: _raw_pipelined(client, job)}
        for size in BATCH_SIZES:
            loops[f"bus publish_many (x{size})"] = _batches(publisher, size)
        rates = take_turns(loops, events)
        for name, rate in rates.items():
            report.add("publish_batch", name, rate, "ev/s")
        publisher.close()
        client.close()
        shown = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
        bench.log(f"publish_batch {rep + 1}/{bench.options.repeat}: {shown} ev/s")
    baseline = report.metrics[f"publish_batch/{RAW_PIPELINED}"]
    for size in BATCH_SIZES:
        metric = report.metrics[f"publish_batch/bus publish_many (x{size})"]
        metric.target = ">= 50,000 ev/s" if size == max(BATCH_SIZES) else ""
        report.compare(metric, baseline, "raw pipelined")
    bench.flush()


def _raw_loop(client: redis.Redis, job: bytes) -> Loop:
    rpush = client.rpush

    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for _ in chunk:
            rpush(KEY, job)

    return loop


def _raw_pipelined(client: redis.Redis, job: bytes) -> Loop:
    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(chunk), RAW_PIPELINE):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(RAW_PIPELINE, len(chunk) - start)):
                pipe.rpush(KEY, job)
            pipe.execute()

    return loop


def _loop(publisher: Publisher) -> Loop:
    publish = publisher.publish

    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for attributes in chunk:
            publish(attributes)

    return loop


def _batches(publisher: Publisher, size: int) -> Loop:
    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(chunk), size):
            publisher.publish_batch(chunk[start : start + size])

    return loop
