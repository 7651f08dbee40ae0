"""A subscription as stored in Redis, app/queue key normalisation, and retry policy."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from bus.backoff import exponential
from bus.errors import InvalidSubscription
from bus.pipeline.envelope import RIDER_PROXY, dumps
from bus.pipeline.matcher import Matcher
from bus.safejson import read_json

_NON_WORD = re.compile(r"\W", re.ASCII)


def normalize(value: object) -> str:
    """Ruby's ``to_s.gsub(/\\W/, "_").downcase``: how app keys and queue names are stored."""
    return _NON_WORD.sub("_", str(value)).lower()


def app_key_of(value: object) -> str:
    """A normalised app key, or :class:`InvalidSubscription` if nothing of it is left."""
    key = normalize(value)
    if not key.strip("_"):
        raise InvalidSubscription(f"invalid application name {value!r}: it needs a letter or digit")
    return key


@dataclass(frozen=True, slots=True)
class Retry:
    """How a failing handler is retried before its job goes to the failed list.

    ``max_retries`` retries after the first attempt, the n-th after
    ``min(max_delay, base_delay * 2 ** (n - 1))`` seconds (jittered down to half), or after
    ``delays[n - 1]`` when explicit delays are given.
    """

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    delays: tuple[float, ...] | None = None
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidSubscription("max_retries cannot be negative")
        if self.base_delay < 0 or self.max_delay < 0:
            raise InvalidSubscription("retry delays cannot be negative")
        if self.delays is not None and any(d < 0 for d in self.delays):
            raise InvalidSubscription("retry delays cannot be negative")

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if self.delays:
            return float(self.delays[min(retry_number, len(self.delays)) - 1])
        delay = exponential(self.base_delay, retry_number, self.max_delay)
        return delay * random.uniform(0.5, 1.0) if self.jitter else delay


@dataclass(frozen=True, slots=True)
class Subscription:
    """One entry of an app's subscription hash: where matching events are driven."""

    app_key: str
    key: str
    queue_name: str
    class_name: str = RIDER_PROXY
    matcher: Matcher = field(default_factory=lambda: Matcher({}))

    def to_redis(self) -> str:
        """The JSON value Ruby's ``rake queuebus:subscribe`` writes for this subscription."""
        return dumps(
            {
                "queue_name": self.queue_name,
                "key": self.key,
                "class": self.class_name,
                "matcher": self.matcher.to_redis(),
            }
        )

    @classmethod
    def from_redis(cls, app_key: str, value: bytes | str) -> Subscription | None:
        """Decode a stored subscription; None for entries Ruby would skip too."""
        try:
            data: Any = read_json(value)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        key = str(data.get("key") or "")
        queue_name = str(data.get("queue_name") or "")
        if not key or not queue_name:
            return None
        matcher = data.get("matcher")
        return cls(
            app_key=app_key,
            key=key,
            queue_name=normalize(queue_name),
            class_name=str(data.get("class") or ""),
            matcher=Matcher(matcher if isinstance(matcher, dict) else {}),
        )

    def matches(self, attributes: dict[str, Any]) -> bool:
        return self.matcher.matches(attributes)
