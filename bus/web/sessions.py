"""Sign-in sessions kept in Redis, so signing out ends a session wherever its cookie went.

The cookie carries a signed random id; the session lives while its key does (12 hours).
Signing out deletes the key, so a copied cookie dies with it. While Redis cannot be asked,
a correctly signed cookie is let through: every page then says Redis is unreachable and
nothing can be changed, which beats sending people to a sign-in that cannot work.
"""

from __future__ import annotations

import logging
from typing import Any

from bus.connection import TRANSIENT_ERRORS
from bus.keys import Keys
from bus.web.signing import new_nonce

log = logging.getLogger("bus.web")

SESSION_SECONDS = 12 * 3600


class Sessions:
    """Which signed-in sessions are still open."""

    def __init__(self, redis: Any, keys: Keys, seconds: int = SESSION_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.seconds = seconds

    def start(self) -> str:
        """A new session's id, open for ``seconds``."""
        session_id = new_nonce()
        try:
            self.redis.set(self.keys.web_session(session_id), "1", ex=self.seconds)
        except TRANSIENT_ERRORS as exc:
            log.warning("could not record a sign-in (%s): it lasts until Redis answers again", type(exc).__name__)
        return session_id

    def is_open(self, session_id: str) -> bool:
        try:
            return bool(self.redis.exists(self.keys.web_session(session_id)))
        except TRANSIENT_ERRORS:
            return True  # the signature holds; the page itself will say Redis is down

    def end(self, session_id: str) -> None:
        try:
            self.redis.delete(self.keys.web_session(session_id))
        except TRANSIENT_ERRORS as exc:
            log.warning("could not end a session in Redis (%s): only its cookie was removed", type(exc).__name__)
