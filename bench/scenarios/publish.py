"""``publish``: ``publish()``, one event per call (the bus, and the peers), against a raw
redis-py loop of single ``RPUSH`` commands of the same job bytes, taking turns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from bench import systems
from bench.harness import Bench
from bench.systems import LABELS
from bench.systems.base import Publisher
from bench.turns import WARM_UP, Loop, one_by_one, take_turns
from bench.workload import INCOMING_KEY, event, sample_job

RAW_LOOP = "raw redis-py RPUSH loop"


def run(bench: Bench) -> None:
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
            loops[f"{LABELS[name]} publish()"] = one_by_one(publisher.publish)
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


def _raw_loop(client: redis.Redis, job: bytes) -> Loop:
    rpush = client.rpush

    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for _ in chunk:
            rpush(INCOMING_KEY, job)

    return loop
