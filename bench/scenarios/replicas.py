"""``replicas``: what ``publish_replicas = 1`` costs. The bench server gets a replica, and
``publish()`` without waiting and ``publish()`` waiting for it (Redis ``WAIT`` in the same
round trip) take turns over the same events, as the ``publish`` scenario does."""

from __future__ import annotations

import functools
from urllib.parse import urlparse

from bench.harness import Bench
from bench.turns import WARM_UP, Loop, one_by_one, take_turns
from bench.workload import EVENT_TYPE, event
from bus import Bus
from bus.settings import BusSettings
from tests.support.polling import wait_for
from tests.support.topologies import DOWN, HOST, free_ports, server_node

PLAIN = "bus publish()"
WAITING = "bus publish(), publish_replicas = 1"


def run(bench: Bench) -> None:
    master_port = urlparse(bench.url).port
    replica = server_node(free_ports(1)[0], bench.workdir / "replica", "--replicaof", HOST, str(master_port))
    replica.start()
    try:
        replica.wait_ready()
        wait_for(
            lambda: replica.client().info("replication").get("master_link_status") == "up",
            timeout=30,
            message="replica in sync",
            not_yet=DOWN,
        )
        events = [event(i) for i in range(bench.options.events)]
        for rep in range(bench.options.repeat):
            bench.flush()
            buses = {
                PLAIN: Bus(settings=BusSettings(redis_url=bench.url)),
                WAITING: Bus(settings=BusSettings(redis_url=bench.url, publish_replicas=1)),
            }
            loops: dict[str, Loop] = {}
            for name, bus in buses.items():
                for attributes in events[:WARM_UP]:
                    bus.publish(EVENT_TYPE, attributes)
                loops[name] = one_by_one(functools.partial(bus.publish, EVENT_TYPE))
            rates = take_turns(loops, events)
            for name, rate in rates.items():
                bench.report.add("replicas", name, rate, "ev/s")
            for bus in buses.values():
                bus.close()
            shown = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
            bench.log(f"replicas {rep + 1}/{bench.options.repeat}: {shown} ev/s")
        metrics = bench.report.metrics
        bench.report.compare(metrics[f"replicas/{WAITING}"], metrics[f"replicas/{PLAIN}"], "not waiting")
    finally:
        replica.kill()
        bench.flush()
