"""One-click unsubscribe (RFC 8058): signed, expiring tokens and the headers that carry them.

A token names a recipient key (a digest, never the address), a category and a channel,
signed with the switchboard's ``unsubscribe_secret``: it cannot be forged, and it cannot be
turned onto another recipient or category, since all three are inside the signature. Using
it twice changes nothing the first use did not. ``switchboard hooks`` serves
``POST /unsubscribe/<token>`` (what mail clients send for ``List-Unsubscribe-Post``) and a
``GET`` confirmation page that never unsubscribes by itself (link scanners follow GETs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from bus.settings_loader import Secret
from switchboard.errors import SettingsError, SwitchboardError

SALT = "switchboard.unsubscribe.v1"
MAX_TOKEN_LENGTH = 1024
"""Longer than any token we issue: anything bigger is refused before it is decoded."""


@dataclass(frozen=True, slots=True)
class UnsubscribeSettings:
    """``[switchboard.unsubscribe]``: the links' signing secret, their lifetime, the mailto address."""

    secret: Secret | None = None
    """At least 32 characters (``SWITCHBOARD_UNSUBSCRIBE_SECRET``); unset: emails carry no unsubscribe link."""
    max_age_days: float = 60.0
    """How long a link works after its email went out."""
    mailto: str | None = None
    """An address for mail clients that unsubscribe by email (``List-Unsubscribe: <mailto:...>``)."""

    def __post_init__(self) -> None:
        if self.secret is not None and self.secret and len(self.secret.reveal()) < 32:
            raise SettingsError("switchboard.unsubscribe.secret must be at least 32 characters")
        if isinstance(self.max_age_days, bool) or not self.max_age_days > 0:
            raise SettingsError("switchboard.unsubscribe.max_age_days must be greater than 0")
        if self.mailto is not None and ("@" not in self.mailto or any(c in self.mailto for c in "<>?, \r\n")):
            raise SettingsError("switchboard.unsubscribe.mailto must be a plain address like unsubscribe@example.com")


class InvalidToken(SwitchboardError):
    """An unsubscribe token that is forged, damaged, expired or not ours."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a token asks: stop ``category`` on ``channel`` for ``recipient_key``."""

    recipient_key: str
    category: str
    channel: str


class UnsubscribeTokens:
    """Issues and reads tokens signed with one secret; ``max_age`` seconds after issue they expire."""

    def __init__(self, secret: str, *, max_age: float) -> None:
        if len(secret) < 32:
            raise SwitchboardError("the unsubscribe secret must be at least 32 characters")
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age = max_age

    def issue(self, request: Unsubscribe) -> str:
        return str(self._serializer.dumps([request.recipient_key, request.category, request.channel]))

    def read(self, token: str) -> Unsubscribe:
        """The request a token carries; :class:`InvalidToken` for anything not issued by us and still fresh."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("not an unsubscribe token")
        try:
            payload: Any = self._serializer.loads(token, max_age=int(self.max_age))
        except SignatureExpired:
            raise InvalidToken("this unsubscribe link has expired") from None
        except BadData:
            raise InvalidToken("not an unsubscribe token of ours") from None
        if not (isinstance(payload, list) and len(payload) == 3 and all(isinstance(p, str) and p for p in payload)):
            raise InvalidToken("not an unsubscribe token of ours")
        return Unsubscribe(*payload)

    def url(self, public_url: str, request: Unsubscribe) -> str:
        """The https link for one recipient, category and channel (``unsubscribe_url`` in templates)."""
        return f"{public_url.rstrip('/')}/unsubscribe/{quote(self.issue(request), safe='')}"


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` (the https link, and a mailto when configured) with the one-click header.

    The mailto's subject carries the link's token, so whoever reads that mailbox can act on it.
    """
    targets = [f"<{url}>"]
    if mailto:
        token = url.rstrip("/").rsplit("/", 1)[-1]
        targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{token}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
