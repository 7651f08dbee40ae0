"""Redis Cluster and Sentinel topologies on loopback for tests: start, kill a master, stop.

``RedisCluster``: 6 servers, 3 masters with a replica each, created with redis-cli.
``RedisSentinel``: 1 master, 2 replicas and 3 sentinels watching service ``mymaster``.
Both are context managers that SIGKILL every process they started on exit, and both wait
on polled conditions (never fixed sleeps): a cluster is ready when every node says
``cluster_state:ok`` and every replica's link is up (a replica that never synced refuses
to take over); a failover is done when every survivor agrees on the new master.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
import redis.cluster
import redis.sentinel
from redis.crc import key_slot

from bus.backend.embedded import free_port
from tests.support.polling import wait_for
from tests.support.servers import server_binary

HOST = "127.0.0.1"
SERVICE = "mymaster"
BUS_PORT_OFFSET = 10  # --cluster-port p+10 instead of the default p+10000
POLL = 0.05
DOWN = (redis.RedisError, OSError)
"""What a node that is not up (yet) raises: polling goes on."""


def cli_binary() -> str:
    """redis-cli or valkey-cli, preferring the one beside the server binary."""
    server = Path(server_binary())
    for name in ("redis-cli", "valkey-cli"):
        beside = server.with_name(name)
        if beside.is_file():
            return str(beside)
    for name in ("redis-cli", "valkey-cli"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("neither redis-cli nor valkey-cli found")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, bus_ports: bool = False) -> list[int]:
    """Distinct free loopback ports; with ``bus_ports``, p+10 is free too and overlaps no other."""
    taken: set[int] = set()
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        claim = {port, port + BUS_PORT_OFFSET} if bus_ports else {port}
        if claim & taken or (bus_ports and not _port_free(port + BUS_PORT_OFFSET)):
            continue
        taken |= claim
        ports.append(port)
    return ports


def _text(node: ServerNode, *command: str) -> str:
    """A command's reply as the server sent it (redis-py would parse INFO and CLUSTER NODES)."""
    with node.client() as client:
        client.response_callbacks.clear()
        return str(client.execute_command(*command))


def _info(node: ServerNode, *command: str) -> dict[str, str]:
    """``field:value`` lines of INFO or CLUSTER INFO as a dict."""
    return dict(line.split(":", 1) for line in _text(node, *command).splitlines() if ":" in line)


def _wait_replicated(master: ServerNode, timeout: float) -> None:
    """Wait until the master's replica holds every write the master had when asked.

    Replication is asynchronous: a master killed while its replica is still at offset 0 (a
    fresh cluster, a loaded machine) loses what it acknowledged, which is Redis's documented
    behaviour, not what a failover test is about. Writes acknowledged in the few milliseconds
    between this and the kill are as exposed as in production."""
    target = int(_info(master, "INFO", "replication").get("master_repl_offset", "0"))

    def caught_up() -> bool:
        replica = _info(master, "INFO", "replication").get("slave0", "")
        fields = dict(part.split("=", 1) for part in replica.split(",") if "=" in part)
        return int(fields.get("offset", "-1")) >= target

    wait_for(caught_up, timeout=timeout, interval=POLL, message="the replica caught up with its master")


@dataclass
class ServerNode:
    """One server or sentinel process: its port, directory and command line."""

    port: int
    directory: Path
    argv: list[str] = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"node {self.port} is not running")
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, decode_responses=True)

    def start(self, *extra: str) -> None:
        """Spawn the process (``extra`` arguments override the node's own, last one wins)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [*self.argv, *extra]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 15.0) -> None:
        def answers() -> bool:
            if not self.alive:
                raise RuntimeError(f"server on {self.port} exited, see {self.directory}")
            with self.client() as client:
                return bool(client.ping())

        message = f"server on port {self.port} answers PING"
        wait_for(answers, timeout=timeout, interval=POLL, message=message, not_yet=DOWN)

    def kill(self) -> None:
        """SIGKILL: what a crash or the OOM killer does."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None


def server_node(port: int, directory: Path, *extra: str) -> ServerNode:
    """A data node with its own directory and an append-only file."""
    d = directory / f"node-{port}"
    argv = [server_binary(), "--port", str(port), "--bind", HOST, "--dir", str(d), "--save", ""]
    argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--repl-diskless-sync-delay", "0"]
    argv += ["--logfile", str(d / "server.log"), *extra]
    return ServerNode(port, d, argv)


@dataclass(frozen=True)
class Failover:
    """What ``kill_master*`` did: the killed and promoted ports, and the seconds it took."""

    killed_port: int
    promoted_port: int
    seconds: float
    before: str = ""
    """The killed master's replication state just before the kill, for a failing test's report."""


class Topology:
    """Shared lifecycle: start, a context manager, and SIGKILL of everything on stop."""

    nodes: list[ServerNode]

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Kill every process (SIGKILL; tests never need their data afterwards)."""
        for node in self.nodes:
            node.kill()

    def node(self, port: int) -> ServerNode:
        return next(n for n in self.nodes if n.port == port)

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Start a killed node again on its port and data; return once it has rejoined as a replica."""
        node = self.node(port)
        node.start(*self._restart_args())
        node.wait_ready()
        wait_for(self._settled, timeout=timeout, interval=POLL, message=f"node {port} back as a replica", not_yet=DOWN)

    def _restart_args(self) -> list[str]:
        return []

    def _settled(self) -> bool:
        """Every node up, every replica in sync with its master."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class ClusterMember:
    """A node as CLUSTER NODES describes it."""

    node_id: str
    port: int
    role: str  # "master" or "replica"
    master_id: str | None
    failed: bool
    slots: tuple[tuple[int, int], ...]
    pid: int | None = None  # filled in by RedisCluster.masters()

    def owns(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


def parse_cluster_nodes(text: str) -> list[ClusterMember]:
    """Parse CLUSTER NODES output (``id ip:port@bus[,host] flags master ... slots``)."""
    members = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = set(fields[2].split(","))
        slots = []
        for spec in fields[8:]:
            if not spec.startswith("["):  # skip importing/migrating markers
                low, _, high = spec.partition("-")
                slots.append((int(low), int(high or low)))
        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        role = "master" if "master" in flags else "replica"
        master_id = None if fields[3] == "-" else fields[3]
        failed = bool(flags & {"fail", "fail?", "noaddr", "handshake"})
        members.append(ClusterMember(fields[0], port, role, master_id, failed, tuple(slots)))
    return members


class RedisCluster(Topology):
    """3 masters with one replica each on free loopback ports, bus ports at port+10."""

    def __init__(self, directory: Path, *, node_timeout_ms: int = 2000, server_args: Sequence[str] = ()) -> None:
        self.directory = directory
        extra = ["--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout_ms), *server_args]
        self.nodes = []
        for port in free_ports(6, bus_ports=True):
            conf = str(directory / f"nodes-{port}.conf")
            bus = ["--cluster-port", str(port + BUS_PORT_OFFSET), "--cluster-config-file", conf]
            self.nodes.append(server_node(port, directory, *extra, *bus))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(HOST, n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,...,127.0.0.1:P6/``: every node, so a dead one is skipped."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.addresses) + "/"

    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        """Fresh ClusterNode objects (redis-py stores connections on them: never share)."""
        return [redis.cluster.ClusterNode(h, p) for h, p in self.addresses]  # type: ignore[no-untyped-call]

    def client(self, **options: Any) -> redis.cluster.RedisCluster:
        """A redis-py cluster client; ``options`` as for ``redis.cluster.RedisCluster``."""
        return redis.cluster.RedisCluster(startup_nodes=self.startup_nodes(), **options)

    def start(self) -> Self:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        create = [cli_binary(), "--cluster", "create", *(f"{h}:{p}" for h, p in self.addresses)]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"cluster create failed: {done.stdout}\n{done.stderr}")
        wait_for(
            lambda: self._healthy(self.nodes),
            timeout=60,
            interval=POLL,
            message="cluster ok and every replica in sync",
            not_yet=DOWN,
        )
        return self

    def members(self) -> list[ClusterMember]:
        """The cluster as a live node sees it."""
        for node in self.nodes:
            if node.alive:
                return parse_cluster_nodes(_text(node, "CLUSTER NODES"))
        raise RuntimeError("no live cluster node")

    def masters(self) -> list[ClusterMember]:
        """Live masters serving slots, with their pids."""
        live = [m for m in self.members() if m.role == "master" and m.slots and not m.failed]
        return [replace(m, pid=self.node(m.port).pid) for m in live]

    def master_of(self, key: str) -> ClusterMember:
        slot = key_slot(key.encode())
        return next(m for m in self.masters() if m.owns(slot))

    def kill_master_of(self, key: str, timeout: float = 30.0) -> Failover:
        """SIGKILL the master owning ``key``'s slot; return once its replica serves the slot everywhere."""
        slot = key_slot(key.encode())
        member = self.master_of(key)
        _wait_replicated(self.node(member.port), timeout)
        replication = _info(self.node(member.port), "INFO", "replication")
        epoch = _info(self.node(member.port), "CLUSTER INFO").get("cluster_current_epoch")
        shown = ("master_repl_offset", "connected_slaves", "slave0")
        before = f"epoch {epoch}; " + "; ".join(f"{k}={replication.get(k)}" for k in shown)
        started = time.monotonic()
        self.node(member.port).kill()
        survivors = [n for n in self.nodes if n.alive]

        def promoted() -> int | None:
            if not self._healthy(survivors):
                return None
            owners = set()
            for n in survivors:
                members = parse_cluster_nodes(_text(n, "CLUSTER NODES"))
                owners |= {m.port for m in members if m.role == "master" and not m.failed and m.owns(slot)}
            return owners.pop() if len(owners) == 1 and member.port not in owners else None

        message = f"a replica of {member.port} promoted"
        new_port = wait_for(promoted, timeout=timeout, interval=POLL, message=message, not_yet=DOWN)
        return Failover(member.port, new_port, time.monotonic() - started, before)

    def move_slot_of(self, key: str, to_port: int) -> None:
        """Reshard ``key``'s slot with all its keys to the master on ``to_port`` (clients get MOVED)."""
        self.begin_slot_move(key, to_port)
        self.finish_slot_move(key, to_port)

    def begin_slot_move(self, key: str, to_port: int, keys: Sequence[str] | None = None) -> None:
        """Mark ``key``'s slot as migrating to ``to_port`` and migrate ``keys`` (default: all).

        Until ``finish_slot_move``, a command on a migrated key gets ASK, and a multi-key
        command whose keys sit on both nodes gets TRYAGAIN."""
        slot = key_slot(key.encode())
        source, target = self.master_of(key), self._master_on(to_port)
        with self.node(source.port).client() as src, self.node(to_port).client() as dst:
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
            if keys is not None:
                if keys:
                    src.execute_command("MIGRATE", HOST, to_port, "", 0, 5000, "KEYS", *keys)
                return
        self._migrate_all(source.port, slot, to_port)

    def finish_slot_move(self, key: str, to_port: int, timeout: float = 30.0) -> None:
        """Migrate the slot's remaining keys, then give it to ``to_port`` on every node."""
        slot = key_slot(key.encode())
        source, target = self.master_of(key), self._master_on(to_port)
        self._migrate_all(source.port, slot, to_port)
        others = [m.port for m in self.masters() if m.port not in (to_port, source.port)]
        for port in [to_port, source.port, *others]:  # the new owner first, as documented
            with self.node(port).client() as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", target.node_id)

        def moved() -> bool:
            for node in (n for n in self.nodes if n.alive):
                if not any(
                    m.port == to_port and m.owns(slot) for m in parse_cluster_nodes(_text(node, "CLUSTER NODES"))
                ):
                    return False
            return True

        message = f"slot {slot} owned by {to_port} everywhere"
        wait_for(moved, timeout=timeout, interval=POLL, message=message, not_yet=DOWN)

    def _master_on(self, port: int) -> ClusterMember:
        return next(m for m in self.masters() if m.port == port)

    def _migrate_all(self, from_port: int, slot: int, to_port: int) -> None:
        with self.node(from_port).client() as source:
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                source.execute_command("MIGRATE", HOST, to_port, "", 0, 5000, "KEYS", *keys)

    def _settled(self) -> bool:
        return self._healthy(self.nodes)

    def _healthy(self, nodes: list[ServerNode]) -> bool:
        """Every node says cluster_state:ok and sees 3 masters and the other live nodes as
        healthy replicas; every replica's link to its master is up."""
        for node in nodes:
            if _info(node, "CLUSTER INFO").get("cluster_state") != "ok":
                return False
            live = [m for m in parse_cluster_nodes(_text(node, "CLUSTER NODES")) if not m.failed]
            masters = sum(m.role == "master" and bool(m.slots) for m in live)
            if masters != 3 or sum(m.role == "replica" for m in live) != len(nodes) - 3:
                return False
            replication = _info(node, "INFO", "replication")
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
        return True


class RedisSentinel(Topology):
    """A master, 2 replicas and 3 sentinels (quorum 2) watching service ``mymaster``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ports = free_ports(6)
        master, *replica_ports = ports[:3]
        self.sentinel_ports = ports[3:]
        self.data = [server_node(master, directory)]
        self.data += [server_node(p, directory, "--replicaof", HOST, str(master)) for p in replica_ports]
        self.sentinels = [self._sentinel(p) for p in self.sentinel_ports]
        self.nodes = self.data + self.sentinels
        self._initial_master = master

    def _sentinel(self, port: int) -> ServerNode:
        d = self.directory / f"sentinel-{port}"
        conf = d / "sentinel.conf"
        return ServerNode(port, d, [server_binary(), str(conf), "--sentinel"])

    def _write_sentinel_conf(self, node: ServerNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {node.port}",
            f"bind {HOST}",
            f"dir {node.directory}",
            f"logfile {node.directory / 'sentinel.log'}",
            f"sentinel monitor {SERVICE} {HOST} {self._initial_master} 2",
            f"sentinel down-after-milliseconds {SERVICE} 1000",
            f"sentinel failover-timeout {SERVICE} 3000",
            f"sentinel parallel-syncs {SERVICE} 1",
        ]
        (node.directory / "sentinel.conf").write_text("\n".join(lines) + "\n")

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(HOST, p) for p in self.sentinel_ports]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster/0``."""
        return "redis+sentinel://" + ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses) + f"/{SERVICE}/0"

    def master_client(self, **options: Any) -> redis.Redis:
        """A redis-py client that asks the sentinels where the master is (again after errors)."""
        sentinel = redis.sentinel.Sentinel(self.sentinel_addresses, socket_timeout=5)  # type: ignore[no-untyped-call, unused-ignore]
        client: redis.Redis = sentinel.master_for(SERVICE, **options)  # type: ignore[no-untyped-call, unused-ignore]
        return client

    def master_port(self) -> int:
        """The master's port as the first answering sentinel reports it."""
        for node in self.sentinels:
            if node.alive:
                with node.client() as client:
                    _, port = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
                    return int(port)
        raise RuntimeError("no live sentinel")

    def start(self) -> Self:
        for node in self.data:
            node.start()
        for node in self.data:
            node.wait_ready()
        # Sentinels learn replicas from the master's INFO (every 10 s), so start them once
        # both replicas are attached and the very first INFO lists them.
        master = self._initial_master
        wait_for(lambda: self._replicas_up(master), timeout=30, interval=POLL, message="replicas in sync", not_yet=DOWN)
        for node in self.sentinels:
            self._write_sentinel_conf(node)
            node.start()
        for node in self.sentinels:
            node.wait_ready()
        wait_for(
            lambda: self._sentinels_agree(master),
            timeout=30,
            interval=POLL,
            message="sentinels see everything",
            not_yet=DOWN,
        )
        return self

    def kill_master(self, timeout: float = 30.0) -> Failover:
        """SIGKILL the master; return once every sentinel names a new master that is a writable master."""
        old = self.master_port()
        started = time.monotonic()
        self.node(old).kill()

        def promoted() -> int | None:
            ports = set()
            for node in self.sentinels:
                with node.client() as client:
                    ports.add(int(client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)[1]))
            if len(ports) != 1 or old in ports:
                return None
            new = ports.pop()
            return new if _info(self.node(new), "INFO", "replication").get("role") == "master" else None

        message = f"sentinels promote a replica of {old}"
        new_port = wait_for(promoted, timeout=timeout, interval=POLL, message=message, not_yet=DOWN)
        return Failover(old, new_port, time.monotonic() - started)

    def _restart_args(self) -> list[str]:
        # A restarted old master would come up as a master until the sentinels demote it,
        # which takes ~20 s (they poll replicas' INFO every 10 s); start it as a replica.
        return ["--replicaof", HOST, str(self.master_port())]

    def _settled(self) -> bool:
        master = self.master_port()
        return self._replicas_up(master) and self._sentinels_agree(master, replica_links=False)

    def _replicas_up(self, master: int) -> bool:
        if _info(self.node(master), "INFO", "replication").get("connected_slaves") != "2":
            return False
        replicas = [n for n in self.data if n.port != master]
        return all(_info(n, "INFO", "replication").get("master_link_status") == "up" for n in replicas)

    def _sentinels_agree(self, master: int, *, replica_links: bool = True) -> bool:
        """Every sentinel knows the master, both replicas (up, and with ``replica_links`` in
        sync as far as it knows) and the 2 other sentinels."""
        for node in self.sentinels:
            with node.client() as client:
                state = client.sentinel_master(SERVICE)
                if int(state["port"]) != master or not state["is_master"] or state["is_sdown"]:
                    return False
                if state["num-slaves"] != 2 or state["num-other-sentinels"] != 2:
                    return False
                replicas = client.sentinel_slaves(SERVICE)
                if any(r["is_sdown"] or (replica_links and r["master-link-status"] != "ok") for r in replicas):
                    return False
        return True
