"""What the deliveries page is asked to find: status, channel, recipient, time window, page.

A recipient is searched by its digest (``recipient_digest``), the same one the records
keep: the address, number or token someone types is turned into a digest when the search
form is posted and never appears in a URL, a link or a log line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus.web.params import parse_int
from switchboard.channels import Channel
from switchboard.deliveries import Status
from switchboard.privacy import mask, recipient_digest

PER_PAGE = 50
MAX_PAGE = 1_000_000
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
WINDOW_LABELS = {"": "any time", "15m": "last 15 minutes", "1h": "last hour", "24h": "last 24 hours"}
WINDOW_LABELS |= {"7d": "last 7 days", "30d": "last 30 days"}
STATUSES = tuple(status.value for status in Status)
CHANNELS = tuple(channel.value for channel in Channel)
_DIGEST = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class DeliveryQuery:
    """A search of the delivery records; unknown values are dropped rather than trusted."""

    status: str = ""
    channel: str = ""
    recipient: str = ""  # a recipient digest
    masked: str = ""  # how the searched recipient looks masked, to remind who it is
    since: str = ""  # a key of WINDOWS, "" for any time
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DeliveryQuery:
        """From a query string (or a form): only known statuses, channels, windows, digests."""
        status = str(params.get("status") or "")
        channel = str(params.get("channel") or "")
        recipient = str(params.get("recipient") or "")
        since = str(params.get("since") or "")
        page = str(params.get("page") or "1")
        return cls(
            status=status if status in STATUSES else "",
            channel=channel if channel in CHANNELS else "",
            recipient=recipient if _DIGEST.fullmatch(recipient) else "",
            masked=str(params.get("masked") or "")[:80] if _DIGEST.fullmatch(recipient) else "",
            since=since if since in WINDOWS else "",
            page=parse_int(page, low=1, high=MAX_PAGE) or 1,
        )

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> DeliveryQuery:
        """The posted search form: a typed recipient becomes its digest here, and only here."""
        query = cls.from_params(form)
        typed = str(form.get("to") or "").strip()
        if typed:
            return cls(query.status, query.channel, recipient_digest(typed), mask(typed), query.since)
        return cls(query.status, query.channel, query.recipient, query.masked, query.since)

    @property
    def active(self) -> bool:
        return bool(self.status or self.channel or self.recipient or self.since)

    def since_epoch(self, now: float | None = None) -> float | None:
        seconds = WINDOWS.get(self.since)
        return None if seconds is None else (time.time() if now is None else now) - seconds

    def params(self) -> dict[str, str]:
        """The query string of this search (page 1 left out)."""
        values = {"status": self.status, "channel": self.channel, "recipient": self.recipient}
        values |= {"masked": self.masked, "since": self.since, "page": str(self.page) if self.page > 1 else ""}
        return {k: v for k, v in values.items() if v}
