"""HMAC signing of the small values the dashboard keeps in cookies (CSRF, session, flash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time


class Signer:
    """Signs and checks short strings; without a key of the settings', with one made for this process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def mac(self, purpose: str, value: str) -> str:
        """A hex MAC of ``value``, bound to ``purpose`` so one cookie cannot stand for another."""
        return hmac.new(self._key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def verify_mac(self, purpose: str, value: str, mac: str) -> bool:
        return hmac.compare_digest(self.mac(purpose, value).encode(), mac.encode())

    def sign(self, purpose: str, value: str, *, max_age: int | None = None) -> str:
        """``value`` made tamper-proof (and expiring after ``max_age`` seconds) for a cookie."""
        expires = str(int(time.time()) + max_age) if max_age else "0"
        body = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        return f"{body}.{expires}.{self.mac(purpose, body + '.' + expires)}"

    def unsign(self, purpose: str, signed: str | None) -> str | None:
        """The value if the signature holds and it has not expired, else None."""
        if not signed or signed.count(".") != 2:
            return None
        body, expires, mac = signed.split(".")
        if not self.verify_mac(purpose, body + "." + expires, mac):
            return None
        if not expires.isdigit() or (expires != "0" and int(expires) < time.time()):
            return None
        try:
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except ValueError:
            return None


def new_nonce() -> str:
    return secrets.token_hex(16)
