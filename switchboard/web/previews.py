"""HTML rendered from data typed into the template editor, kept briefly for its iframes.

What someone types may be personal data, so it never goes into a URL (URLs end up in
access logs and browser history): the page gets one unguessable token per HTML part and
the frame route serves the HTML from here. Entries expire, and the oldest go first once
``size`` is reached, so memory stays bounded however many previews are asked for.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

TTL_SECONDS = 15 * 60
SIZE = 200


class Previews:
    """A small in-process store of rendered HTML by token (one dashboard process, one store)."""

    def __init__(
        self, *, ttl: float = TTL_SECONDS, size: int = SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, html: str) -> str:
        """Keep ``html``; the token to fetch it with."""
        token = secrets.token_urlsafe(18)
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._entries[token] = (now + self.ttl, html)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return token

    def get(self, token: str) -> str | None:
        """The HTML kept under ``token``, or None when unknown or expired."""
        with self._lock:
            self._expire(self._clock())
            entry = self._entries.get(token)
        return entry[1] if entry else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            token, (expires, _) = next(iter(self._entries.items()))
            if expires > now:
                return
            del self._entries[token]
