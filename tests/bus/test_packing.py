"""Commands packed in C (``bus.backend.packing``) are the bytes redis-py itself would send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.exceptions

from bus import Bus
from bus.backend.connection import connect, connect_async
from bus.backend.packing import FastPacking, fast_connection_class
from bus.settings import BusSettings

ARGUMENTS: list[Any] = [
    "plain",
    "",
    "ünïcødé ✉ and an emoji 🚀",
    b"\x00\xff raw bytes\r\n",
    memoryview(b"a view"),
    0,
    -17,
    2**70,
    1.5,
    0.1 + 0.2,
    -0.0,
    1e100,
    float("inf"),
    "x" * 70_000,  # beyond redis-py's 6,000-byte chunking
]


def _packers() -> tuple[Any, Any]:
    plain = redis.connection.Connection()  # type: ignore[no-untyped-call, unused-ignore]
    fast = fast_connection_class(redis.connection.Connection)()
    return plain, fast


@pytest.mark.parametrize("value", ARGUMENTS, ids=lambda v: type(v).__name__ + ":" + repr(v)[:20])
def test_a_command_packs_to_the_same_bytes(value: Any) -> None:
    plain, fast = _packers()
    command = ("EVAL", "return 1", 1, "key", value, value)
    assert b"".join(fast.pack_command(*command)) == b"".join(map(bytes, plain.pack_command(*command)))


def test_a_pipeline_packs_to_the_same_bytes_and_a_spaced_name_splits_as_redis_py_does() -> None:
    plain, fast = _packers()
    named = [("CLIENT SETINFO", "LIB-NAME", "bus"), (b"CONFIG GET", "maxmemory")]
    commands = [*named, *[("SET", "k", v) for v in ARGUMENTS]]
    assert b"".join(fast.pack_commands(commands)) == b"".join(map(bytes, plain.pack_commands(commands)))


def test_the_asyncio_connection_packs_the_same_bytes() -> None:
    plain = redis.asyncio.connection.Connection()
    fast = fast_connection_class(redis.asyncio.connection.Connection)()
    commands = [("HSET", "h", "f", v) for v in ARGUMENTS]
    assert b"".join(fast.pack_commands(commands)) == b"".join(map(bytes, plain.pack_commands(commands)))


@pytest.mark.parametrize("value", [True, None, {"a": 1}, ["a"]])
def test_what_redis_py_refuses_it_still_refuses_with_its_own_error(value: Any) -> None:
    _, fast = _packers()
    with pytest.raises(redis.exceptions.DataError):
        fast.pack_command("SET", "k", value)
    with pytest.raises(redis.exceptions.DataError):
        fast.pack_commands([("SET", "k", "fine"), ("SET", "k", value)])


def test_a_bytearray_goes_through_redis_pys_packer(redis_url: str) -> None:
    client = connect(redis_url)
    client.set("k", bytearray(b"array"))
    assert client.get("k") == b"array"


def test_the_bus_clients_pack_fast_and_round_trip_every_kind_of_argument(redis_url: str) -> None:
    bus = Bus(settings=BusSettings(redis_url=redis_url))
    client = bus.redis
    assert issubclass(client.connection_pool.connection_class, FastPacking)
    pipe = client.pipeline(transaction=False)
    for i, value in enumerate(ARGUMENTS):
        pipe.set(f"k{i}", value)
    pipe.execute()
    stored = [client.get(f"k{i}") for i in range(len(ARGUMENTS))]
    expected = [
        v.encode() if isinstance(v, str) else bytes(v) if isinstance(v, bytes | memoryview) else repr(v).encode()
        for v in ARGUMENTS
    ]
    assert stored == expected

    async def through_asyncio() -> list[Any]:
        aclient = connect_async(redis_url)
        assert issubclass(aclient.connection_pool.connection_class, FastPacking)
        try:
            await aclient.set("async", "ünïcødé")
            return [await aclient.get("async"), await aclient.execute_command("CONFIG GET", "maxmemory")]
        finally:
            await aclient.aclose()

    value, config = asyncio.run(through_asyncio())
    assert value == "ünïcødé".encode()
    assert [k if isinstance(k, str) else k.decode() for k in config] == ["maxmemory"]
    bus.close()
