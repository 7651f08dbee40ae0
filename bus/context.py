"""Per-task publishing context: ``bus_context``, locale, timezone and local mode.

Context variables, not globals, so each thread and each asyncio task sees its own
values and a ``with`` block never leaks into work running beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any

from bus.errors import ConfigurationError


class LocalMode(StrEnum):
    """How ``publish`` behaves without the bus (tests, scripts, single-process apps)."""

    INLINE = "inline"
    """Run this process's matching handlers at once, in the publishing thread."""
    STANDALONE = "standalone"
    """Skip the driver: push straight to the queues of this process's matching subscriptions."""
    SUPPRESS = "suppress"
    """Publish nothing at all."""


_UNSET: Any = object()
bus_context: ContextVar[Any] = ContextVar("bus_context", default=_UNSET)
bus_locale: ContextVar[str | None] = ContextVar("bus_locale", default=None)
bus_timezone: ContextVar[str | None] = ContextVar("bus_timezone", default=None)
local_mode_var: ContextVar[LocalMode | None] = ContextVar("bus_local_mode", default=_UNSET)


def parse_local_mode(value: str | LocalMode | None) -> LocalMode | None:
    if value is None or isinstance(value, LocalMode):
        return value
    try:
        return LocalMode(value)
    except ValueError:
        modes = ", ".join(m.value for m in LocalMode)
        raise ConfigurationError(f"unknown local mode {value!r} (expected one of: {modes})") from None


@contextmanager
def in_context(context: Any = _UNSET, *, locale: str | None = None, timezone: str | None = None) -> Iterator[None]:
    """Stamp events published inside the block with ``bus_context`` / locale / timezone."""
    tokens = []
    if context is not _UNSET:
        tokens.append((bus_context, bus_context.set(context)))
    if locale is not None:
        tokens.append((bus_locale, bus_locale.set(locale)))
    if timezone is not None:
        tokens.append((bus_timezone, bus_timezone.set(timezone)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def local_mode(mode: str | LocalMode | None) -> Iterator[None]:
    """Override the bus's local mode inside the block (``None`` means: really publish)."""
    token = local_mode_var.set(parse_local_mode(mode))
    try:
        yield
    finally:
        local_mode_var.reset(token)


def current_local_mode(default: LocalMode | None) -> LocalMode | None:
    mode = local_mode_var.get()
    return default if mode is _UNSET else mode


def current_context(default: Any = None) -> Any:
    value = bus_context.get()
    return default if value is _UNSET else value


@contextmanager
def riding(attributes: dict[str, Any]) -> Iterator[None]:
    """While a handler runs, events it publishes inherit the ridden event's locale/timezone."""
    locale = attributes.get("bus_locale")
    tz = attributes.get("bus_timezone")
    with in_context(
        locale=locale if isinstance(locale, str) else None,
        timezone=tz if isinstance(tz, str) else None,
    ):
        yield
