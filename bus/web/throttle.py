"""Limits on wrong credentials per client, so a token or password cannot be guessed at speed.

Every wrong sign-in (form, Bearer or Basic) counts against the client's address; past
``limit`` in ``window`` seconds the client is refused with 429 until its oldest miss ages
out, even with the right credentials, so guessing cannot tell when it succeeded. Counts live
in this process (a restart forgets them). The address is the connection's own, or what
``X-Forwarded-For`` says when the connection comes from one of ``web.trusted_proxies``
(see :func:`bus.web.serving.uvicorn_config`); an untrusted proxy in front makes every client
one address, which then limits them all together: the safe side.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.types import Scope

FAILURES_ALLOWED = 10
WINDOW_SECONDS = 60.0
CLIENTS_TRACKED = 10_000


class FailedSignIns:
    """Wrong attempts per client address within a sliding window."""

    def __init__(
        self,
        limit: int = FAILURES_ALLOWED,
        window: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        clients_tracked: int = CLIENTS_TRACKED,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._clients_tracked = clients_tracked
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        with self._lock:
            misses = self._misses.get(client)
            if misses is None or len(self._pruned(misses)) < self.limit:
                return 0
            return max(1, math.ceil(misses[0] + self.window - self._clock()))

    def failed(self, client: str) -> None:
        with self._lock:
            self._pruned(self._misses.setdefault(client, deque())).append(self._clock())
            self._misses.move_to_end(client)
            while len(self._misses) > self._clients_tracked:
                self._misses.popitem(last=False)  # the client quiet for longest

    def _pruned(self, misses: deque[float]) -> deque[float]:
        horizon = self._clock() - self.window
        while misses and misses[0] <= horizon:
            misses.popleft()
        return misses


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
