"""Printing for the CLIs: aligned plain-text tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Column = tuple[str, str]  # (key in the row, header)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value).replace("\n", " ")


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], *, empty: str = "(none)") -> str:
    """An aligned table; numbers right-aligned, everything else left."""
    materialised = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    if not materialised:
        return empty
    headers = [header for _, header in columns]
    widths = [max(len(h), *(len(r[i]) for r in materialised)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in materialised) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in materialised]
    return "\n".join(out)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == "-"
    return True
