"""Packing commands into the Redis protocol in C, one call per command.

redis-py runs every argument through a Python encoder before hiredis packs it (a genexpr, an
``encode`` call and four ``isinstance`` checks per argument): the largest self time of a
switchboard send, whose scripts take dozens of arguments. hiredis packs ``str``, ``bytes``,
``int`` and ``float`` itself, byte for byte as redis-py does (UTF-8, ``repr`` of numbers), so
these connections hand it the arguments as they are. Anything else (a ``bool``, ``None``, a
``bytearray``) goes through redis-py's own packer, which raises its usual ``DataError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis


def _split_name(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """redis-py sends a command name such as ``"CLIENT SETINFO"`` as two arguments."""
    name = args[0]
    if isinstance(name, str):
        if " " in name:
            return (*name.split(), *args[1:])
    elif isinstance(name, bytes) and b" " in name:
        return (*name.split(), *args[1:])
    return args


class FastPacking:
    """Mixed into a redis-py connection class (blocking or asyncio) before it."""

    def pack_command(self, *args: Any) -> list[bytes]:
        try:
            return [hiredis.pack_command(_split_name(args))]
        except TypeError:
            packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
            return packed

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        listed = [tuple(command) for command in commands]
        try:
            return [b"".join([hiredis.pack_command(_split_name(command)) for command in listed])]
        except TypeError:
            packed: list[bytes] = super().pack_commands(listed)  # type: ignore[misc]
            return packed


_FAST: dict[type, type] = {}


def fast_connection_class(base: type) -> type:
    """``base`` with :class:`FastPacking` (one subclass per base, made once)."""
    if issubclass(base, FastPacking):
        return base
    fast = _FAST.get(base)
    if fast is None:
        fast = _FAST[base] = type(f"Fast{base.__name__}", (FastPacking, base), {})
    return fast


def pack_fast(client: Any) -> Any:
    """Make the connections ``client``'s pool opens from now on pack with :class:`FastPacking`."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None and hasattr(pool, "connection_class"):
        pool.connection_class = fast_connection_class(pool.connection_class)
    return client
