"""What the logger keeps of an event: type filters, and redaction before anything is written."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

REDACTED = "[redacted]"


class EventFilter:
    """Include/exclude by event type (``fnmatch`` patterns) and redact attributes by name."""

    def __init__(self, *, include: Iterable[str] = (), exclude: Iterable[str] = (), redact: Iterable[str] = ()):
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.redact_names = frozenset(name.lower() for name in redact)

    def wanted(self, event_type: str) -> bool:
        if self.include and not any(fnmatchcase(event_type, p) for p in self.include):
            return False
        return not any(fnmatchcase(event_type, p) for p in self.exclude)

    def redact(self, value: Any) -> Any:
        """A copy with the value of every attribute named in ``redact`` replaced, at any depth."""
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and k.lower() in self.redact_names else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value
