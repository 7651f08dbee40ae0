"""Sign-in sessions kept in Redis, so signing out ends a session wherever its cookie went.

The cookie carries a signed random id; the session lives while its key does (12 hours).
Signing out deletes the key, so a copied cookie dies with it. While Redis cannot be asked
whether a session is open, signed-in pages answer 503 rather than guess either way.
"""

from __future__ import annotations

from typing import Any

from bus.backend.connection import with_retries
from bus.keys import Keys
from bus.web.signing import new_nonce

SESSION_SECONDS = 12 * 3600
PATIENCE = 2.0
"""Seconds a sign-in or sign-out keeps retrying a Redis that does not answer."""


class Sessions:
    """Which signed-in sessions are still open. Each method raises
    :class:`~bus.errors.RedisUnavailable` when Redis does not answer within :data:`PATIENCE`."""

    def __init__(self, redis: Any, keys: Keys, seconds: int = SESSION_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.seconds = seconds

    def start(self) -> str:
        """A new session's id, open for ``seconds``."""
        session_id = new_nonce()
        key = self.keys.web_session(session_id)
        with_retries(lambda: self.redis.set(key, "1", ex=self.seconds), what="sign-in", patience=PATIENCE)
        return session_id

    def is_open(self, session_id: str) -> bool:
        key = self.keys.web_session(session_id)
        return bool(with_retries(lambda: self.redis.exists(key), what="session check", patience=0))

    def end(self, session_id: str) -> None:
        key = self.keys.web_session(session_id)
        with_retries(lambda: self.redis.delete(key), what="sign-out", patience=PATIENCE)
