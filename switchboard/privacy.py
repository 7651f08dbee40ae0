"""Recipients as records and logs may show them: masked, or as a digest for lookups.

Provider error texts quote recipients ("The 'To' number +15005550001 is not valid"):
:func:`mask_text` masks them before any such text is stored, logged or published.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_E164 = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")


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


_ENCODED_E164 = re.compile(r"%2B([1-9]\d{6,14})(?!\d)")
_TOKEN_FIELD = re.compile(
    r"""(["']?(?:token|fcm_token|registration_token|to)["']?\s*[:=]\s*["'])([^"'\s]{13,})(["'])"""
)


def mask_log_line(text: str) -> str:
    """A log line with the recipients any library may print masked: addresses, numbers (also
    percent-encoded, as in Twilio's form bodies) and device tokens in JSON fields."""
    text = _ENCODED_E164.sub(lambda m: "%2B" + mask("+" + m.group(1))[1:], text)
    text = _TOKEN_FIELD.sub(lambda m: m.group(1) + mask(m.group(2)) + m.group(3), text)
    return mask_text(text)


def mask_text(text: str, recipients: Iterable[str] = ()) -> str:
    """``text`` with every recipient in it masked: the ``recipients`` given (device tokens, numbers
    written without their +), then any email address or E.164 number it still holds."""
    for recipient in sorted({r for r in recipients if r and not r.startswith("topic:")}, key=len, reverse=True):
        masked = mask(recipient)
        text = re.sub(re.escape(recipient), masked, text, flags=re.IGNORECASE)
        if recipient.startswith("+"):
            text = re.sub(rf"(?<!\d){re.escape(recipient[1:])}(?!\d)", masked, text)
    text = _EMAIL.sub(lambda m: mask(m.group(0)) if "***@" not in m.group(0) else m.group(0), text)
    return _E164.sub(lambda m: mask(m.group(0)), text)
