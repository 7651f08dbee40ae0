"""``cluster``: the e2e drain on one server and on a 3-master Redis Cluster on this machine.

The cluster is ``tests/support/topologies.py``'s: 6 servers (3 masters, a replica each), its
node timeout left at the default, append-only off like the benchmark's own server. Each
repeat runs the drain with 2 and 4 worker processes on the single server and on the
cluster, in turns, and on the cluster with ``publish_replicas = 1`` (each driver batch
waits for the replicas of the masters it fanned out to); then the replicas are
stopped (the helper has no ``--cluster-replicas 0``: a stopped replica costs nothing, as an
absent one would), the cluster drains again, and the replicas are restarted and resynced
before the next repeat. CPU of the workers and of every server process, per-node ``INFO
commandstats`` and a profiled worker on each topology say where the time goes.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from redis.crc import key_slot

from bench.drain import Drain, drain_once
from bench.harness import Bench, Target
from bench.profiler import top_cprofile
from bench.systems.cluster import ClusterTarget, restart_replicas, stop_replicas
from bench.workload import APPS, INCOMING, app_queue
from tests.support.topologies import RedisCluster

PROCESSES = (2, 4)
SINGLE = "1 node"
CLUSTER = "3-master cluster + 3 replicas"
BARE = "3-master cluster, replicas stopped"
WAITING = "3-master cluster + 3 replicas, publish_replicas 1"
"""Drivers wait (WAIT) for the replica of every master they fanned out to before acking."""
PROFILED = 10_000


def _name(where: str, procs: int) -> str:
    return f"{where}, {procs} procs"


def run(bench: Bench) -> None:
    options = bench.options
    with RedisCluster(bench.workdir / "cluster", server_args=("--appendonly", "no")) as cluster:
        full = ClusterTarget(cluster)
        bench.log(f"cluster: {full.describe()}")
        _placement(bench, full)
        _profiles(bench, full)
        for rep in range(options.repeat):
            for procs in PROCESSES:
                for where, target in ((SINGLE, None), (CLUSTER, full)):
                    _drain(bench, where, procs, target, rep)
                _drain(bench, WAITING, procs, full, rep, publish_replicas=1)
            stopped = stop_replicas(cluster)
            bare = ClusterTarget(cluster)
            for procs in PROCESSES:
                _drain(bench, BARE, procs, bare, rep)
            restart_replicas(cluster, stopped)
    _compare(bench)
    for procs in PROCESSES:
        for where in (SINGLE, CLUSTER, BARE, WAITING):
            _where_time_goes(bench, where, procs)
    _notes(bench)


def _drain(bench: Bench, where: str, procs: int, target: Target | None, rep: int, **spec_options: Any) -> Drain:
    report, name = bench.report, _name(where, procs)
    drain = drain_once(bench, "bus", "combined", procs, bench.options.events, target=target, **spec_options)
    roles = target.roles() if isinstance(target, ClusterTarget) else ["single"]
    nodes = [
        {"role": role, "cpu_pct": round(100 * cpu / drain.seconds, 1)}
        for role, cpu in zip(roles, drain.server_cpus, strict=True)
    ]
    calls = {cmd: round(v["calls"] / drain.events, 3) for cmd, v in drain.commandstats.items()}
    details = {**drain.details(), "server_nodes": nodes, "commands_per_event": calls}
    report.add("cluster", name, drain.rate, "ev/s", details=details)
    report.add("cluster", f"{name}: workers' CPU per event", drain.worker_us_per_event, "us", higher_is_better=False)
    report.add("cluster", f"{name}: Redis CPU, all servers", drain.server_cpu_pct, "%", higher_is_better=False)
    servers = ", ".join(f"{n['role']} {n['cpu_pct']:.0f}" for n in nodes)
    bench.log(
        f"cluster {rep + 1}/{bench.options.repeat}: {name}: {drain.rate:,.0f} ev/s (CPU: workers "
        f"{drain.worker_cpu_pct:.0f}% = {drain.worker_us_per_event:.0f} us/event, Redis {drain.server_cpu_pct:.0f}% "
        f"[{servers}], others {drain.others_pct:.0f}%)"
    )
    return drain


def _compare(bench: Bench) -> None:
    metrics = bench.report.metrics
    for procs in PROCESSES:
        single = metrics[f"cluster/{_name(SINGLE, procs)}"]
        for where in (CLUSTER, BARE, WAITING):
            metric = metrics[f"cluster/{_name(where, procs)}"]
            metric.target = "> 1x 1 node (grows with shards)"
            bench.report.compare(metric, single, SINGLE)
            bench.report.compare(
                metrics[f"cluster/{_name(where, procs)}: workers' CPU per event"],
                metrics[f"cluster/{_name(SINGLE, procs)}: workers' CPU per event"],
                SINGLE,
            )
        bench.report.compare(
            metrics[f"cluster/{_name(WAITING, procs)}"], metrics[f"cluster/{_name(CLUSTER, procs)}"], "no wait"
        )
    for where in (SINGLE, CLUSTER, BARE, WAITING):
        two, four = (metrics[f"cluster/{_name(where, procs)}"] for procs in PROCESSES)
        bench.report.compare(four, two, f"{PROCESSES[0]} procs")


def _placement(bench: Bench, target: ClusterTarget) -> None:
    """Which master holds each queue (its list and, hash-tagged, its in-flight lists)."""
    queues = [INCOMING, *(app_queue(app) for app in APPS)]
    owners = {queue: target.master_port(key_slot(f"resque:queue:{queue}".encode())) for queue in queues}
    per_master: dict[int, list[str]] = {}
    for queue, port in owners.items():
        per_master.setdefault(port, []).append(queue)
    spread = "; ".join(f":{port} {', '.join(qs)}" for port, qs in sorted(per_master.items()))
    idle = len(target.master_ports) - len(per_master)
    bench.report.note(
        f"cluster: each queue's list and its in-flight lists share one slot, so one master: {spread}"
        + (f" ({idle} master(s) hold no queue: only traces, metrics and stats)" if idle else "")
    )


def _profiles(bench: Bench, cluster: ClusterTarget) -> None:
    """One worker of a 2-process drain under cProfile, on each topology: the client's share."""
    options = bench.options
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    lines = ["", "== cluster profile: worker 1 of 2 under cProfile, self time (share of profiled CPU)"]
    for where, target in ((SINGLE, None), (CLUSTER, cluster)):
        prefix = str(options.json_path.with_name(f"{options.json_path.stem}-profile-cluster-{len(out)}"))
        drain = drain_once(bench, "bus", "combined", 2, min(options.events, PROFILED), profile=prefix, target=target)
        rows = top_cprofile(prefix + ".pstats", 400)
        client = sum(row["tottime_pct"] for row in rows if "redis/" in row["function"])
        out[where] = {"rate": drain.rate, "redis_py_self_pct": round(client, 1), "cprofile_self": rows[:30]}
        lines.append(f"-- {where}: {drain.rate:,.0f} ev/s under cProfile; redis-py's own code {client:.0f}% of it:")
        lines += [f"  {row['tottime_pct']:5.1f}%  {row['calls']:>9,}  {row['function']}" for row in rows[:10]]
    bench.report.extra["cluster_profile"] = out
    print("\n".join(lines), flush=True)


def _where_time_goes(bench: Bench, where: str, procs: int) -> None:
    metric = bench.report.metrics.get(f"cluster/{_name(where, procs)}")
    if metric is None or not metric.details:
        return
    capacity = 100 * (os.cpu_count() or 1)
    others = statistics.median(d["others_cpu_pct"] for d in metric.details)
    workers = statistics.median(sum(d["worker_cpu_pct"]) for d in metric.details)
    redis_pct = statistics.median(d["server_cpu_pct"] for d in metric.details)
    busiest = statistics.median(max(n["cpu_pct"] for n in d["server_nodes"]) for d in metric.details)
    us = statistics.median(d["worker_cpu_us_per_event"] for d in metric.details)
    used = workers + redis_pct + others
    if busiest >= 85:
        verdict = "one Redis process saturates first"
    elif used >= 0.85 * capacity:
        verdict = f"the {capacity // 100} cores are saturated, {workers / max(used, 1):.0%} of it by the workers"
    else:
        verdict = "no CPU is saturated: round trips bound it"
    bench.report.note(
        f"cluster {where}, {procs} procs: {metric.median:,.0f} ev/s; CPU of {capacity}%: workers {workers:.0f}% "
        f"({us:.0f} us/event), Redis {redis_pct:.0f}% (busiest server {busiest:.0f}%), others "
        f"{others:.0f}% = {used:.0f}%: {verdict}. Alone, the busiest server would saturate near "
        f"{metric.median * 100 / max(busiest, 1):,.0f} ev/s; each worker core does about {1e6 / max(us, 1):,.0f} ev/s"
    )


def _notes(bench: Bench) -> None:
    bench.report.note(
        "cluster: here every server and worker shares the same cores: the cluster adds 5 server processes, "
        "its client splits each worker's round trip into one pipeline per master (no MULTI across slots: "
        "writes first, then the acks), which costs the workers more CPU per event (the 'workers' CPU per "
        "event' ratios), and each replica replays its master's writes. Once the workers fill the cores, more "
        "shards cannot add throughput on one machine. On separate hosts each master has a core of its own: "
        "throughput grows with worker processes (about one core per 'each worker core' figure) until the "
        "master holding bus_incoming (every drive, its in-flight lists) saturates"
    )
