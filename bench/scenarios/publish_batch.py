"""``publish_batch``: ``publish_many()`` in batches of 100 and 1,000 against raw redis-py
pipelined ``RPUSH`` (1,000 per round trip) of the same job bytes, taking turns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from bench import systems
from bench.harness import Bench
from bench.systems.base import Publisher
from bench.turns import WARM_UP, Loop, take_turns
from bench.workload import INCOMING_KEY, event, sample_job

BATCH_SIZES = (100, 1000)
RAW_PIPELINE = 1000
RAW_PIPELINED = f"raw redis-py pipelined RPUSH (x{RAW_PIPELINE})"


def run(bench: Bench) -> None:
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


def _raw_pipelined(client: redis.Redis, job: bytes) -> Loop:
    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(chunk), RAW_PIPELINE):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(RAW_PIPELINE, len(chunk) - start)):
                pipe.rpush(INCOMING_KEY, job)
            pipe.execute()

    return loop


def _batches(publisher: Publisher, size: int) -> Loop:
    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(chunk), size):
            publisher.publish_batch(chunk[start : start + size])

    return loop
