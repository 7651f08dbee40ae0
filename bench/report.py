"""Collected figures: each metric keeps every repeat's value and its ratios to baselines."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Metric:
    """One figure measured ``repeat`` times; ``ratios`` are to other metrics of the same run."""

    scenario: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    baselines: dict[str, str] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)
    target: str = ""

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.name}"

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


class Report:
    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.metrics: dict[str, Metric] = {}
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {}

    def add(
        self,
        scenario: str,
        name: str,
        value: float,
        unit: str,
        *,
        higher_is_better: bool = True,
        details: dict[str, Any] | None = None,
        target: str = "",
    ) -> Metric:
        key = f"{scenario}/{name}"
        metric = self.metrics.get(key)
        if metric is None:
            metric = self.metrics[key] = Metric(scenario, name, unit, higher_is_better=higher_is_better, target=target)
        metric.values.append(value)
        if details:
            metric.details.append(details)
        return metric

    def compare(self, metric: Metric | None, baseline: Metric | None, label: str) -> None:
        """Report ``metric`` also as a ratio to ``baseline`` (paired per repeat when possible)."""
        if metric is not None and baseline is not None and metric is not baseline:
            metric.baselines[label] = baseline.key

    def note(self, text: str) -> None:
        self.notes.append(text)

    def finish(self) -> None:
        for metric in self.metrics.values():
            for label, key in metric.baselines.items():
                baseline = self.metrics.get(key)
                if baseline is not None and baseline.values:
                    metric.ratios[label] = _ratio(metric.values, baseline.values)

    def table(self) -> str:
        headers = ["scenario", "metric", "median", "min", "max", "unit", "n", "ratio (median)"]
        rows = [headers]
        for m in self.metrics.values():
            ratios = ", ".join(f"{r:.2f}x {label}" for label, r in m.ratios.items())
            if m.target:
                ratios = f"{ratios}  [target {m.target}]" if ratios else f"[target {m.target}]"
            rows.append(
                [
                    m.scenario,
                    m.name,
                    _fmt(m.median, m.unit),
                    _fmt(min(m.values), m.unit),
                    _fmt(max(m.values), m.unit),
                    m.unit,
                    str(len(m.values)),
                    ratios,
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
        right = {2, 3, 4, 6}
        lines = []
        for n, row in enumerate(rows):
            pairs = enumerate(zip(row, widths, strict=True))
            cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in pairs]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        metrics = []
        for m in self.metrics.values():
            data = asdict(m)
            data.update(key=m.key, median=m.median, min=min(m.values), max=max(m.values))
            metrics.append(data)
        return {"meta": self.meta, "metrics": metrics, "notes": self.notes, **self.extra}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")


def _ratio(values: list[float], baseline: list[float]) -> float:
    if len(values) == len(baseline) and all(baseline):
        return statistics.median(v / b for v, b in zip(values, baseline, strict=True))
    base = statistics.median(baseline)
    return statistics.median(values) / base if base else float("nan")


def _fmt(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "-"
    if unit in ("ev/s", "calls/s", "cmd/s"):
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"
