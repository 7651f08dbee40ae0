"""The GSM 03.38 alphabet: which SMS bodies fit 7-bit encoding and which need UCS-2 ("unicode").

Twilio picks the encoding itself; Vonage sends what it is told, and a body with one
character outside this alphabet sent as ``text`` arrives garbled, so the provider asks for
``unicode`` whenever ``is_gsm7`` says no.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
"""Characters of the extension table: each takes two septets."""


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` has a GSM 7-bit encoding."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)
