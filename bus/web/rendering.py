"""The Jinja environment: autoescaping always on, and the few filters the pages share."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request

from bus.web.names import isolated, name_html, reordering_shown

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def environment(extra_dirs: Sequence[str | Path] = ()) -> jinja2.Environment:
    """Templates from ``extra_dirs`` first (other packages' pages), then the bus pages."""
    loader = jinja2.FileSystemLoader([*[str(d) for d in extra_dirs], str(TEMPLATES)])
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, finalize=shown_controls)
    env.filters.update(pretty=pretty, ago=ago, utc=utc, number=number, shorten=shorten, until=until, seconds=seconds)
    env.filters.update(name=name_html, isolated=isolated, verbatim=verbatim)
    env.globals.update(path_for=path_for, query=query)
    return env


def shown_controls(value: Any) -> Any:
    """Every ``{{ }}`` on every page: bidi controls in text shown as code points, so nothing
    stored can reorder what a page says (form values that must post back unchanged use ``verbatim``)."""
    return reordering_shown(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def verbatim(value: Any) -> Markup:
    """Escaped but otherwise as is: for form fields that post a value back (a filter, typed data)."""
    return escape(value)


def seconds(value: Any) -> str:
    """A delay as people read it: ``2.5 s``, ``1m 30s``; what is not a number is shown as is."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)
    return f"{value:.3g} s" if abs(value) < 60 else duration(value)


def pretty(value: Any) -> str:
    """Indented JSON for a ``<pre>`` (escaped by the template like everything else)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def ago(epoch: float | None, now: float | None = None) -> str:
    if not epoch:
        return "never"
    seconds = (time.time() if now is None else now) - epoch
    return "just now" if abs(seconds) < 1 else f"{duration(abs(seconds))} {'ago' if seconds >= 0 else 'ahead'}"


def until(epoch: float, now: float | None = None) -> str:
    seconds = epoch - (time.time() if now is None else now)
    return (
        f"in {duration(seconds)}" if seconds >= 1 else f"due {duration(-seconds)} ago" if seconds <= -1 else "due now"
    )


def duration(seconds: float) -> str:
    """``42s``, ``5m 3s``, ``2h 10m``, ``3d 4h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        big, small, units = *divmod(s, 60), "ms"
    elif s < 86400:
        big, small, units = s // 3600, s % 3600 // 60, "hm"
    else:
        big, small, units = s // 86400, s % 86400 // 3600, "dh"
    return f"{big}{units[0]} {small}{units[1]}" if small else f"{big}{units[0]}"


def utc(epoch: float | None) -> str:
    """A time as people read it; one no date can show (from hostile data) says so instead of failing."""
    if not epoch:
        return "-"
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError, TypeError):
        return "invalid time"


def number(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def shorten(text: Any, width: int = 160) -> str:
    """The first line, cut to ``width`` characters; an ellipsis says something was left out."""
    full = str(text).strip()
    line = full.splitlines()[0] if full else ""
    if len(line) > width:
        return line[: width - 1].rstrip() + "…"
    return line + " …" if line != full else line


def url_path(request: Request, name: str, /, **params: Any) -> str:
    """The path of a named route (below the app's mount point, so it works behind a proxy).

    Parameters are percent-encoded whole: a queue named ``a/b`` or ``x%70`` gets a path that
    leads back to that very name, never to another.
    """
    quoted = {key: quote(value, safe=":") if isinstance(value, str) else value for key, value in params.items()}
    return str(request.url_for(name, **quoted).path)


@jinja2.pass_context
def path_for(context: jinja2.runtime.Context, name: str, /, **params: Any) -> str:
    return url_path(context["request"], name, **params)


@jinja2.pass_context
def query(context: jinja2.runtime.Context, /, **changes: Any) -> str:
    """This page's query string with some parameters changed (None drops one): for pagers."""
    request: Request = context["request"]
    params = {k: v for k, v in request.query_params.multi_items() if k not in changes and k != "partial"}
    params.update({k: v for k, v in changes.items() if v is not None and v != ""})
    return "?" + urlencode(params) if params else "?"
