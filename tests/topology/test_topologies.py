"""What plain redis-py does against a real Redis Cluster and Sentinel, before the bus relies on it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterError,
    CrossSlotTransactionError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from tests.support.polling import wait_for
from tests.support.topologies import Failover, RedisCluster, RedisSentinel

QUEUE = "resque:queue:app_default"
INFLIGHT = "resque:inflight:{resque:queue:app_default}:w1"
# Reserve: move the oldest job from the queue to the worker's in-flight list, atomically.
RESERVE = "local job = redis.call('LPOP', KEYS[1]) if job then redis.call('RPUSH', KEYS[2], job) end return job"
PRIMARIES = redis.cluster.RedisCluster.PRIMARIES

# What a client has to retry while a master dies and a replica takes over. MasterNotFoundError
# (Sentinel: "no master yet") is a ConnectionError; ClusterError covers ClusterDownError and the
# bare ClusterError("TTL exhausted.") redis-py raises after 16 redirects or TRYAGAINs.
RETRYABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterError,
    TryAgainError,
    MovedError,
    SlotNotCoveredError,
    ReadOnlyError,
)


class WriteLoop:
    """A thread that SETs ``w:<i>`` to ``i`` for i = 0, 1, ..., retrying each i until acknowledged."""

    def __init__(self, client: redis.Redis | redis.cluster.RedisCluster) -> None:
        self.client = client
        self.acked = 0
        self.errors: Counter[str] = Counter()
        self.outages: list[float] = []  # seconds from the first error to the next acknowledged write
        self.crash: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-loop", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        failing_since: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    self.client.set(f"w:{self.acked}", self.acked)
                except RETRYABLE as error:
                    self.errors[type(error).__name__] += 1
                    failing_since = failing_since or time.monotonic()
                    self._stop.wait(0.02)  # back off a little, as a real client would
                    continue
                self.acked += 1
                if failing_since is not None:
                    self.outages.append(time.monotonic() - failing_since)
                    failing_since = None
        except BaseException as error:
            self.crash = error

    def wait_for_acks(self, count: int, timeout: float = 30.0) -> None:
        def reached() -> bool:
            if self.crash is not None:
                raise AssertionError(f"write loop crashed: {self.crash!r}")
            return self.acked >= count

        wait_for(reached, timeout=timeout, message=f"{count} acknowledged writes")

    def report(self, failover: Failover) -> str:
        outages = ", ".join(f"{s:.2f}s" for s in self.outages)
        return f"{failover}; {self.acked} writes acked; client errors {dict(self.errors)}; outages {outages}"

    def missing(self) -> list[int]:
        """Acknowledged writes that cannot be read back."""
        return [i for i in range(self.acked) if self.client.get(f"w:{i}") != str(i)]


def pipeline(client: redis.cluster.RedisCluster, *, transaction: bool = False) -> Any:
    """A ClusterPipeline (its methods are untyped in redis-py)."""
    return client.pipeline(transaction=transaction)  # type: ignore[no-untyped-call]


def master_address(client: redis.Redis) -> tuple[str, int]:
    """Where a sentinel-managed client currently sends commands."""
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
    return str(host), int(port)


def slots_of(cluster: RedisCluster, port: int) -> Callable[[str], bool]:
    """A predicate: does this key's slot belong to the master on ``port``?"""
    master = next(m for m in cluster.masters() if m.port == port)
    return lambda key: master.owns(key_slot(key.encode()))


# -- Cluster: layout and commands ------------------------------------------------------------


def test_cluster_has_three_masters_each_with_a_process(cluster: RedisCluster) -> None:
    masters = cluster.masters()
    assert len(masters) == 3
    assert sum(high - low + 1 for m in masters for low, high in m.slots) == 16384
    assert {m.pid for m in masters} <= {n.pid for n in cluster.nodes}
    assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes) + "/"


def test_writes_spread_over_the_three_masters(
    cluster: RedisCluster, cluster_client: redis.cluster.RedisCluster
) -> None:
    for i in range(300):
        cluster_client.set(f"spread:{i}", i)
    per_master = {}
    for master in cluster.masters():
        with redis.Redis(port=master.port) as direct:
            per_master[master.port] = direct.dbsize()
    assert sum(per_master.values()) == 300
    assert all(count > 50 for count in per_master.values()), per_master
    assert [cluster_client.get(f"spread:{i}") for i in range(300)] == [str(i) for i in range(300)]


def test_keys_and_dbsize_ask_one_node_unless_told_otherwise(cluster_client: redis.cluster.RedisCluster) -> None:
    """A trap for the dashboard: redis-py sends KEYS and DBSIZE to a single node by default."""
    for i in range(60):
        cluster_client.set(f"count:{i}", i)
    assert cluster_client.dbsize() < 60
    assert cluster_client.dbsize(target_nodes=PRIMARIES) == 60
    assert len(cluster_client.keys("count:*", target_nodes=PRIMARIES)) == 60
    assert len(list(cluster_client.scan_iter("count:*"))) == 60


def test_queue_and_inflight_keys_share_a_slot(cluster_client: redis.cluster.RedisCluster) -> None:
    slot = key_slot(QUEUE.encode())
    assert key_slot(INFLIGHT.encode()) == slot
    assert cluster_client.cluster_keyslot(INFLIGHT) == slot
    assert key_slot(b"resque:inflight:resque:queue:app_default:w1") != slot  # the braces matter


def test_eval_and_lmove_with_both_keys(cluster_client: redis.cluster.RedisCluster) -> None:
    cluster_client.rpush(QUEUE, "j1", "j2", "j3")
    assert cluster_client.eval(RESERVE, 2, QUEUE, INFLIGHT) == "j1"
    assert cluster_client.register_script(RESERVE)(keys=[QUEUE, INFLIGHT]) == "j2"
    assert cluster_client.lmove(QUEUE, INFLIGHT) == "j3"
    assert cluster_client.lrange(INFLIGHT, 0, -1) == ["j1", "j2", "j3"]
    with pytest.raises(RedisClusterException, match="same key slot"):
        cluster_client.eval(RESERVE, 2, QUEUE, "resque:inflight:w1")


def test_eval_in_a_cluster_pipeline_goes_through_execute_command(cluster_client: redis.cluster.RedisCluster) -> None:
    cluster_client.rpush(QUEUE, "j1", "j2")
    pipe = pipeline(cluster_client)
    pipe.execute_command("EVAL", RESERVE, 2, QUEUE, INFLIGHT)
    pipe.execute_command("EVALSHA", cluster_client.script_load(RESERVE), 2, QUEUE, INFLIGHT)
    pipe.set("elsewhere", 1)  # other slots in the same (non-transactional) pipeline are fine
    assert pipe.execute() == ["j1", "j2", True]
    with pytest.raises(RedisClusterException, match="not implemented"):
        pipeline(cluster_client).eval()
    if tuple(int(part) for part in redis.__version__.split(".")[:2]) < (8, 2):
        # Before redis-py 8.2 a Script object refused cluster pipelines: the reason for execute_command.
        with pytest.raises(RedisClusterException, match="blocked when running redis in cluster mode"):
            cluster_client.register_script(RESERVE)(keys=[QUEUE, INFLIGHT], client=pipeline(cluster_client))


def test_transactions_work_on_one_slot_only(cluster_client: redis.cluster.RedisCluster) -> None:
    cluster_client.rpush(QUEUE, "j1", "j2")
    pipe = pipeline(cluster_client, transaction=True)
    pipe.execute_command("EVAL", RESERVE, 2, QUEUE, INFLIGHT)
    pipe.lmove(QUEUE, INFLIGHT)
    pipe.llen(INFLIGHT)
    assert pipe.execute() == ["j1", "j2", 2]

    def requeue(pipe: Any) -> None:
        pipe.multi()
        pipe.lmove(INFLIGHT, QUEUE, "RIGHT", "LEFT")

    assert cluster_client.transaction(requeue, QUEUE, INFLIGHT) == ["j2"]  # type: ignore[no-untyped-call]  # WATCH + MULTI/EXEC
    pipe = pipeline(cluster_client, transaction=True)
    pipe.rpush(QUEUE, "j3")
    pipe.set("elsewhere", 1)
    with pytest.raises(CrossSlotTransactionError):
        pipe.execute()


def test_blocking_moves_through_the_cluster_client(cluster_client: redis.cluster.RedisCluster) -> None:
    started = time.monotonic()
    assert cluster_client.blmove(QUEUE, INFLIGHT, 1) is None
    assert time.monotonic() - started >= 0.9
    pusher = threading.Timer(0.2, lambda: cluster_client.rpush(QUEUE, "late"))
    pusher.start()
    try:
        assert cluster_client.blmove(QUEUE, INFLIGHT, 10) == "late"  # woken by a push on another connection
    finally:
        pusher.join()
    cluster_client.rpush(QUEUE, "j1")
    assert cluster_client.blmpop(1, 1, QUEUE, direction="LEFT") == [QUEUE, ["j1"]]
    with pytest.raises(RedisClusterException, match="same key slot"):
        cluster_client.blmove(QUEUE, "resque:inflight:w1", 1)


def test_clients_follow_ask_and_moved_while_a_slot_moves(
    cluster: RedisCluster, cluster_client: redis.cluster.RedisCluster
) -> None:
    cluster_client.rpush(QUEUE, "j1", "j2")
    cluster_client.rpush(INFLIGHT, "j0")
    source = cluster.master_of(QUEUE).port
    target = next(m.port for m in cluster.masters() if m.port != source)
    try:
        cluster.begin_slot_move(QUEUE, target, keys=[QUEUE])  # the queue is moved, the in-flight list not yet
        assert cluster_client.lrange(QUEUE, 0, -1) == ["j1", "j2"]  # ASK, followed
        pipe = pipeline(cluster_client)
        pipe.lrange(QUEUE, 0, -1)
        assert pipe.execute() == [["j1", "j2"]]  # ASK, followed in a pipeline
        pipe = pipeline(cluster_client, transaction=True)
        pipe.lrange(QUEUE, 0, -1)
        with pytest.raises(AskError):  # ...but not in a transaction
            pipe.execute()
        with pytest.raises(ClusterError, match="TTL exhausted"):  # TRYAGAIN until redis-py gives up
            cluster_client.eval(RESERVE, 2, QUEUE, INFLIGHT)
        cluster.finish_slot_move(QUEUE, target)
        assert cluster.master_of(QUEUE).port == target
        assert cluster_client.eval(RESERVE, 2, QUEUE, INFLIGHT) == "j1"
        pipe = pipeline(cluster_client, transaction=True)
        pipe.lmove(QUEUE, INFLIGHT)
        assert pipe.execute() == ["j2"]
        assert cluster_client.lrange(INFLIGHT, 0, -1) == ["j0", "j1", "j2"]
    finally:
        if cluster.master_of(QUEUE).port != target:  # leave no half-moved slot to later tests
            cluster.finish_slot_move(QUEUE, target)


# -- Cluster: a master dies under load -------------------------------------------------------


@pytest.mark.slow
def test_write_loop_rides_through_a_cluster_master_kill(fresh_cluster: RedisCluster) -> None:
    client = fresh_cluster.client(decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
    with WriteLoop(client) as loop:
        loop.wait_for_acks(300)
        failover = fresh_cluster.kill_master_of("w:0")
        before = loop.acked
        loop.wait_for_acks(before + 300)
    print(loop.report(failover))  # shown with -s, and with the output of a failing test
    assert failover.seconds < 20
    owned_by_promoted = slots_of(fresh_cluster, failover.promoted_port)
    assert owned_by_promoted("w:0")
    assert any(owned_by_promoted(f"w:{i}") for i in range(before, loop.acked)), "no write reached the new master"
    assert loop.missing() == []
    assert client.dbsize(target_nodes=PRIMARIES) == loop.acked
    client.close()
    fresh_cluster.restart(failover.killed_port)  # the old master comes back as a replica of the new one
    rejoined = next(m for m in fresh_cluster.members() if m.port == failover.killed_port)
    promoted = next(m for m in fresh_cluster.members() if m.port == failover.promoted_port)
    assert rejoined.role == "replica"
    assert rejoined.master_id == promoted.node_id


# -- Sentinel ---------------------------------------------------------------------------------


def test_sentinel_client_finds_the_master(sentinel: RedisSentinel, sentinel_master: redis.Redis) -> None:
    addresses = ",".join(f"127.0.0.1:{port}" for _, port in sentinel.sentinel_addresses)
    assert sentinel.url == f"redis+sentinel://{addresses}/mymaster/0"
    sentinel_master.set("k", "v")
    assert sentinel_master.get("k") == "v"
    assert master_address(sentinel_master) == ("127.0.0.1", sentinel.master_port())
    assert sentinel_master.wait(2, 5000) == 2  # both replicas have it


@pytest.mark.slow
def test_write_loop_rides_through_a_sentinel_failover(fresh_sentinel: RedisSentinel) -> None:
    client = fresh_sentinel.master_client(decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
    with WriteLoop(client) as loop:
        loop.wait_for_acks(300)
        failover = fresh_sentinel.kill_master()
        before = loop.acked
        loop.wait_for_acks(before + 300)
    print(loop.report(failover))  # shown with -s, and with the output of a failing test
    assert failover.seconds < 20
    assert fresh_sentinel.master_port() == failover.promoted_port
    assert master_address(client) == ("127.0.0.1", failover.promoted_port)
    assert loop.missing() == []
    assert client.dbsize() == loop.acked
    client.close()
    fresh_sentinel.restart(failover.killed_port)
    with fresh_sentinel.node(failover.killed_port).client() as rejoined:
        assert rejoined.role()[0] == "slave"
        assert rejoined.get("w:0") == "0"
