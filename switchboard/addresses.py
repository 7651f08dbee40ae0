"""The address in a sender as people write it (``"Shop" <shop@example.com>``), parsed once.

Every email send asks it several times (the sender's channel state, the allowed senders,
the provider's request) and ``email.utils.parseaddr`` is a character-by-character parser;
senders repeat, so answers are kept (a bounded number: ``from`` comes from events).
"""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache


@lru_cache(maxsize=1024)
def address_of(sender: str) -> str:
    """``parseaddr(sender)[1]``: the bare address, or "" when there is none."""
    return parseaddr(sender)[1]
