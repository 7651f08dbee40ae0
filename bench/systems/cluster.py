"""A Redis Cluster of ``tests/support/topologies.py`` as a drain target: URL, flush, CPU, commandstats;
stopping and restarting its replicas."""

from __future__ import annotations

from typing import Any

from bench.machine import cpu_seconds
from tests.support.polling import wait_for
from tests.support.topologies import DOWN, HOST, POLL, ClusterMember, RedisCluster, ServerNode


class ClusterTarget:
    """The cluster's live nodes as they are now (build a new one after stopping nodes)."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        members = [m for m in cluster.members() if not m.failed]
        self.members: list[ClusterMember] = sorted(members, key=lambda m: (m.role != "master", m.port))
        self.nodes: list[ServerNode] = [cluster.node(m.port) for m in self.members]

    @property
    def url(self) -> str:
        """Every live node, masters first (the client asks the first that answers for the slot map)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{m.port}" for m in self.members) + "/"

    @property
    def master_ports(self) -> list[int]:
        return [m.port for m in self.members if m.role == "master"]

    def master_port(self, slot: int) -> int:
        return next(m.port for m in self.members if m.role == "master" and m.owns(slot))

    def roles(self) -> list[str]:
        """Each server's role and port, in the order of :meth:`cpus`."""
        return [f"{m.role} :{m.port}" for m in self.members]

    def describe(self) -> str:
        return ", ".join(f"{m.role} :{m.port} pid {node.pid}" for m, node in zip(self.members, self.nodes, strict=True))

    def flush(self) -> None:
        for port in self.master_ports:
            with self.cluster.node(port).client() as client:
                client.flushall()
        self.reset_stats()

    def reset_stats(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.config_resetstat()

    def cpus(self) -> list[float]:
        return [cpu_seconds(node.pid) for node in self.nodes]

    def commandstats(self) -> dict[str, dict[str, float]]:
        """Summed over the masters (replicas replay the same writes)."""
        out: dict[str, dict[str, float]] = {}
        for port in self.master_ports:
            with self.cluster.node(port).client() as client:
                stats: dict[str, Any] = client.info("commandstats")
            for name, values in stats.items():
                entry = out.setdefault(name.removeprefix("cmdstat_"), {"calls": 0.0, "usec": 0.0})
                entry["calls"] += float(values["calls"])
                entry["usec"] += float(values["usec"])
        for entry in out.values():
            entry["usec_per_call"] = entry["usec"] / entry["calls"] if entry["calls"] else 0.0
        return out


def stop_replicas(cluster: RedisCluster, timeout: float = 30.0) -> list[int]:
    """SIGKILL every replica; return once the cluster sees them failed (the masters keep serving)."""
    replicas = [m.port for m in cluster.members() if m.role == "replica"]
    for port in replicas:
        cluster.node(port).kill()

    def failed() -> bool:
        return all(m.failed for m in cluster.members() if m.port in replicas)

    wait_for(failed, timeout=timeout, interval=POLL, message="the stopped replicas flagged as failed", not_yet=DOWN)
    return replicas


def restart_replicas(cluster: RedisCluster, ports: list[int]) -> None:
    """Start the stopped replicas again; return once every one is back in sync with its master."""
    *first, last = ports
    for port in first:
        node = cluster.node(port)
        node.start()
        node.wait_ready()
    cluster.restart(last)  # starts the last one, then waits until the whole cluster has settled
