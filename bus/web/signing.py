"""Signing the small values the dashboard keeps in cookies (session, flash) and its form
tokens (CSRF), with itsdangerous: one key, and a salt per purpose so one cannot stand for another."""

from __future__ import annotations

import hashlib
import secrets

import itsdangerous


class Signer:
    """Signs and checks short strings; without a key of the settings', with one made for this process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def mac(self, purpose: str, value: str) -> str:
        """A hex MAC of ``value`` for a form field (the value itself is not sent along)."""
        signer = self._signer(purpose)
        return signer.algorithm.get_signature(signer.derive_key(), value.encode()).hex()

    def mac_matches(self, purpose: str, value: str, mac: str) -> bool:
        """True if ``mac`` is :meth:`mac` of ``value`` (constant time; any other text is False)."""
        try:
            given = bytes.fromhex(mac)
        except ValueError:
            return False
        signer = self._signer(purpose)
        return signer.algorithm.verify_signature(signer.derive_key(), value.encode(), given)

    def sign(self, purpose: str, value: str) -> str:
        """``value`` made tamper-proof and time-stamped, in characters a cookie may hold."""
        return self._serializer(purpose).dumps(value)

    def unsign(self, purpose: str, signed: str | None, *, max_age: int) -> str | None:
        """The value if the signature holds and it is at most ``max_age`` seconds old, else None."""
        if not signed:
            return None
        try:
            value = self._serializer(purpose).loads(signed, max_age=max_age)
        except itsdangerous.BadData:
            return None
        return value if isinstance(value, str) else None

    def _signer(self, purpose: str) -> itsdangerous.Signer:
        return itsdangerous.Signer(self._key, salt=purpose, digest_method=hashlib.sha256)

    def _serializer(self, purpose: str) -> itsdangerous.URLSafeTimedSerializer:
        return itsdangerous.URLSafeTimedSerializer(
            self._key, salt=purpose, signer_kwargs={"digest_method": hashlib.sha256}
        )


def new_nonce() -> str:
    return secrets.token_hex(16)
