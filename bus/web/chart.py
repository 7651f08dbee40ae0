"""The last hour as SVG bar geometry: drawn by the template, refreshed with the live region."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bus.stores.overview import MinuteCount

WIDTH = 600
HEIGHT = 120


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    processed_y: float
    processed_h: float
    failed_y: float
    failed_h: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    peak: int
    processed: int
    failed: int
    width: int = WIDTH
    height: int = HEIGHT


def chart(series: list[MinuteCount]) -> Chart:
    """One bar per minute: processed stacked on failed, scaled to the busiest minute."""
    peak = max((m.processed + m.failed for m in series), default=0)
    scale = (HEIGHT - 4) / peak if peak else 0.0
    slot = WIDTH / max(1, len(series))
    bars = []
    for i, m in enumerate(series):
        failed_h = m.failed * scale
        processed_h = m.processed * scale
        at = datetime.fromtimestamp(m.minute * 60, UTC).strftime("%H:%M")
        bars.append(
            Bar(
                x=round(i * slot + 1, 2),
                width=round(max(1.0, slot - 2), 2),
                processed_y=round(HEIGHT - failed_h - processed_h, 2),
                processed_h=round(processed_h, 2),
                failed_y=round(HEIGHT - failed_h, 2),
                failed_h=round(failed_h, 2),
                label=f"{at} UTC: {m.processed} processed, {m.failed} failed",
            )
        )
    return Chart(bars, peak, sum(m.processed for m in series), sum(m.failed for m in series))
