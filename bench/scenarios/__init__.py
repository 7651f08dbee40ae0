"""The scenarios, by the names ``--scenario`` takes, in the order a full run takes them.

Each module measures one thing with ``run(bench)``: it repeats its measurement
``--repeat`` times, adds the figures to the report and says which baseline each is
compared with (measured in the same run).
"""

from __future__ import annotations

from collections.abc import Callable

from bench.harness import Bench
from bench.scenarios import (
    async_rides,
    cluster,
    e2e,
    hooks,
    latency,
    limits,
    otel,
    profile,
    publish,
    publish_batch,
    replicas,
    rss,
    scaling,
    soak,
    switchboard,
    switchboard_scaling,
    switchboard_soak,
    tracing,
)

SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "publish": publish.run,
    "publish_batch": publish_batch.run,
    "e2e": e2e.run,
    "scaling": scaling.run,
    "latency": latency.run,
    "rss": rss.run,
    "soak": soak.run,
    "profile": profile.run,
    "switchboard": switchboard.run,
    "switchboard_scaling": switchboard_scaling.run,
    "switchboard_soak": switchboard_soak.run,
    "tracing": tracing.run,
    "otel": otel.run,
    "async_rides": async_rides.run,
    "cluster": cluster.run,
    "replicas": replicas.run,
    "limits": limits.run,
    "hooks": hooks.run,
}
