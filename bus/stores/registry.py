"""Apps' subscriptions in Redis: atomic replace, removal, loading, and a driver's cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from bus.backend.connection import as_text
from bus.keys import Keys
from bus.pipeline.subscription import Subscription

log = logging.getLogger("bus.registry")

# Replacing the whole hash in one script keeps the change atomic on a single key, so it
# works unchanged on Redis Cluster (Ruby's temp-key + RENAME would cross slots there).
_REPLACE_HASH = """
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return #ARGV / 2
"""


class Registry:
    """Reads and writes the ``bus_apps`` set and the ``bus_app:<app>`` hashes."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def replace(self, app_key: str, subscriptions: Iterable[Subscription]) -> int:
        """Make ``subscriptions`` the app's whole subscription set; empty unsubscribes."""
        args: list[str] = []
        for sub in subscriptions:
            args += [sub.key, sub.to_redis()]
        if not args:
            self.remove(app_key)
            return 0
        self.redis.eval(_REPLACE_HASH, 1, self.keys.bus_app(app_key), *args)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.bus_apps, app_key)
        pipe.incr(self.keys.subscriptions_version)
        pipe.execute()
        return len(args) // 2

    def remove(self, app_key: str) -> bool:
        """Unsubscribe an app entirely; True if it had subscriptions."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self.keys.bus_apps, app_key)
        pipe.delete(self.keys.bus_app(app_key))
        pipe.incr(self.keys.subscriptions_version)
        removed, deleted, _ = pipe.execute()
        return bool(removed or deleted)

    def apps(self) -> list[str]:
        return sorted(as_text(a) for a in self.redis.smembers(self.keys.bus_apps))

    def load(self, app_keys: Iterable[str] | None = None) -> list[Subscription]:
        """Every subscription of the given apps (all apps by default), skipping bad entries."""
        apps = list(app_keys) if app_keys is not None else self.apps()
        if not apps:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for app in apps:
            pipe.hgetall(self.keys.bus_app(app))
        out: list[Subscription] = []
        for app, raw in zip(apps, pipe.execute(), strict=True):
            for sub_key, value in sorted(raw.items()):
                sub = Subscription.from_redis(app, value)
                if sub is None:
                    log.warning("skipping unreadable subscription %s/%s", app, as_text(sub_key))
                else:
                    out.append(sub)
        return out

    def version(self) -> int:
        return int(self.redis.get(self.keys.subscriptions_version) or 0)


class SubscriptionCache:
    """The driver's copy of all subscriptions, reloaded when they change.

    Our own subscribe/unsubscribe bump a version key, which a driver checks with every
    batch; Ruby and Node writers do not, so the cache is also reloaded every
    ``max_age`` seconds.
    """

    def __init__(self, registry: Registry, max_age: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.max_age = max_age
        self.clock = clock
        self._subs: list[Subscription] = []
        self._version: int | None = None
        self._loaded_at = float("-inf")

    def get(self, version: int | None = None) -> list[Subscription]:
        """Current subscriptions; ``version`` is the version key read alongside the batch."""
        stale = self.clock() - self._loaded_at > self.max_age
        if stale or (version is not None and version != self._version):
            self._version = self.registry.version() if version is None else version
            self._subs = self.registry.load()
            self._loaded_at = self.clock()
        return self._subs
