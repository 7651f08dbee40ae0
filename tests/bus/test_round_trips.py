"""Group commit (``bus.backend.round_trips``): the pipelines of concurrent tasks go as one round
trip, each caller with its own replies and errors, on a real server that tests can kill."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
import redis.exceptions

from bus.backend.connection import connect_async
from bus.backend.round_trips import RoundTrips
from tests.support.servers import RedisProcess


def _connections(client: Any) -> int:
    pool = client.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)


def test_concurrent_pipelines_share_one_connection_and_each_gets_its_own_replies(redis_url: str) -> None:
    async def scenario() -> tuple[list[list[Any]], int]:
        client = connect_async(redis_url)
        trips = RoundTrips(client)

        async def one(i: int) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.set(f"k{i}", i)
            pipe.incrby(f"k{i}", 1000)
            pipe.get(f"k{i}")
            return await trips.execute(pipe)

        replies = await asyncio.gather(*(one(i) for i in range(200)))
        opened = _connections(client)
        await client.aclose()
        return replies, opened

    replies, opened = asyncio.run(scenario())
    assert replies == [[True, 1000 + i, str(1000 + i).encode()] for i in range(200)]
    # Alone, 200 concurrent pipelines take 200 pooled connections; together, one.
    assert opened == 1


def test_one_pipelines_error_is_its_own(redis_url: str) -> None:
    async def scenario() -> list[Any]:
        client = connect_async(redis_url)
        await client.set("text", "not a number")
        trips = RoundTrips(client)

        async def good(i: int) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.incr(f"n{i}")
            return await trips.execute(pipe)

        async def bad() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.incr("text")
            pipe.incr("after")
            return await trips.execute(pipe)

        async def lenient() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.incr("text")
            pipe.incr("after")
            return await trips.execute(pipe, raise_on_error=False)

        results = await asyncio.gather(good(1), bad(), good(2), lenient(), return_exceptions=True)
        await client.aclose()
        return list(results)

    first, refused, second, lenient = asyncio.run(scenario())
    assert first == [1] and second == [1]
    assert isinstance(refused, redis.exceptions.ResponseError)
    assert isinstance(lenient[0], redis.exceptions.ResponseError) and lenient[1] == 2  # the rest of it ran


def test_a_cancelled_caller_leaves_the_others_their_replies(redis_url: str) -> None:
    async def scenario() -> list[Any]:
        client = connect_async(redis_url)
        trips = RoundTrips(client)

        async def one(i: int) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.incr(f"c{i}")
            return await trips.execute(pipe)

        tasks = [asyncio.create_task(one(i)) for i in range(10)]
        await asyncio.sleep(0)
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        again = await one(11)
        await client.aclose()
        return [*results, again]

    results = asyncio.run(scenario())
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [[1]] * 10


def test_redis_gone_fails_every_waiting_pipeline_and_the_next_trip_reconnects(tmp_path: Any) -> None:
    server = RedisProcess(tmp_path / "redis", appendonly=False).start()
    try:

        async def scenario() -> tuple[list[Any], list[Any]]:
            client = connect_async(server.url)
            trips = RoundTrips(client)

            async def one(i: int) -> list[Any]:
                pipe = client.pipeline(transaction=False)
                pipe.incr(f"d{i}")
                return await trips.execute(pipe)

            await one(0)  # connected
            server.kill()
            down = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
            server.restart()
            back = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
            await client.aclose()
            return down, back

        down, back = asyncio.run(scenario())
    finally:
        server.kill()
    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in down), down
    assert all(isinstance(r, list) and len(r) == 1 for r in back), back


def test_an_empty_pipeline_needs_no_round_trip(redis_url: str) -> None:
    async def scenario() -> tuple[list[Any], int]:
        client = connect_async(redis_url)
        replies = await RoundTrips(client).execute(client.pipeline(transaction=False))
        opened = _connections(client)
        await client.aclose()
        return replies, opened

    assert asyncio.run(scenario()) == ([], 0)


@pytest.mark.parametrize("size", [1, 5_000])
def test_big_and_small_batches_keep_every_reply_in_its_place(redis_url: str, size: int) -> None:
    async def scenario() -> list[list[Any]]:
        client = connect_async(redis_url)
        trips = RoundTrips(client)

        async def one(i: int) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for j in range(i % 4):
                pipe.rpush(f"list{i}", j)
            return await trips.execute(pipe)

        out = await asyncio.gather(*(one(i) for i in range(size)))
        await client.aclose()
        return out

    assert asyncio.run(scenario()) == [list(range(1, i % 4 + 1)) for i in range(size)]


def test_a_hung_redis_fails_the_waiting_pipelines_after_the_bound_and_they_go_on_after(tmp_path: Any) -> None:
    """Replies are read without a timeout each (``socket_timeout=None``): the round trip as a
    whole is bounded, so a server that stops answering cannot hang the senders."""
    server = RedisProcess(tmp_path / "redis", appendonly=False).start()
    assert server.process is not None
    try:

        async def scenario() -> tuple[list[Any], float, list[Any]]:
            client = connect_async(server.url, socket_timeout=None)
            trips = RoundTrips(client, timeout=0.5)

            async def one(i: int) -> list[Any]:
                pipe = client.pipeline(transaction=False)
                pipe.incr(f"h{i}")
                return await trips.execute(pipe)

            await one(0)
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            try:
                hung = await asyncio.gather(*(one(i) for i in range(10)), return_exceptions=True)
            finally:
                server.process.send_signal(signal.SIGCONT)
            waited = time.monotonic() - started
            back = await asyncio.gather(*(one(i) for i in range(10)), return_exceptions=True)
            await client.aclose()
            return hung, waited, back

        hung, waited, back = asyncio.run(scenario())
    finally:
        server.kill()
    assert all(isinstance(r, redis.exceptions.TimeoutError) for r in hung), hung
    assert waited < 10  # the bound, not forever (0.5 s, with room for a loaded machine)
    assert all(isinstance(r, list) and len(r) == 1 for r in back), back
