"""Recipients as records and logs may show them: masked, or as a digest for lookups."""

from __future__ import annotations

import hashlib


def normalize_recipient(recipient: str) -> str:
    return recipient.strip().lower()


def recipient_digest(recipient: str) -> str:
    """A stable digest to find a recipient's records without storing the address itself."""
    return hashlib.sha256(normalize_recipient(recipient).encode()).hexdigest()[:32]


def mask(recipient: str) -> str:
    """``a***@example.com``, ``+1415*****23``, ``abcd…wxyz`` (tokens), ``topic:news`` as is."""
    if recipient.startswith("topic:"):
        return recipient
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    if recipient.startswith("+") and recipient[1:].isdigit():
        return recipient[:5] + "*" * max(len(recipient) - 7, 1) + recipient[-2:]
    if len(recipient) > 12:
        return f"{recipient[:4]}…{recipient[-4:]}"
    return "*" * len(recipient)
