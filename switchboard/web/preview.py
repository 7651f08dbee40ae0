"""A template rendered in each of its locales, for the template page and its data editor.

Text parts are shown on the page (escaped like everything else); the HTML part is only
ever shown through a frame URL, which the caller makes: a stable URL for the sample data,
an unguessable token for data someone typed (see :mod:`switchboard.web.previews`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bus.safejson import read_json
from switchboard.templating import TemplateError, TemplateInfo, TemplateStore

MAX_DATA = 64 * 1024
FrameUrl = Callable[[str, str], str]
"""(locale, html) -> the URL an ``<iframe sandbox>`` loads that HTML from."""


class DataError(ValueError):
    """The data typed into the editor is not a JSON object (the message says why)."""


@dataclass(frozen=True)
class LocalePreview:
    """One locale's rendering: its text parts and HTML frame, or why it failed."""

    locale: str
    used: str | None = None  # the locale rendered after fallback (fr_CA may give fr)
    parts: tuple[tuple[str, str], ...] = ()
    frame: str | None = None
    error: str | None = None


def preview_locales(
    store: TemplateStore, info: TemplateInfo, data: Mapping[str, object], frame_url: FrameUrl
) -> list[LocalePreview]:
    """Every locale of ``info`` rendered with ``data``; a TemplateError becomes that locale's error."""
    previews = []
    for locale in info.locales:
        try:
            message = store.render(info.channel, info.name, data, locale)
        except TemplateError as exc:
            previews.append(LocalePreview(locale, error=str(exc)))
            continue
        parts = tuple((name, text) for name, text in message.parts().items() if name != "html")
        frame = frame_url(locale, message.html) if message.html is not None else None
        previews.append(LocalePreview(locale, message.locale, parts, frame))
    return previews


def parse_data(text: str) -> dict[str, object]:
    """The editor's JSON as an object; DataError says where it is broken (never echoing it)."""
    if len(text) > MAX_DATA:
        raise DataError(f"the data is too large (at most {MAX_DATA // 1024} KB)")
    try:
        value = read_json(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # nested too deeply to read
        raise DataError(str(exc)) from None
    if not isinstance(value, dict):
        raise DataError(f"the data must be a JSON object, not {type(value).__name__}")
    return value


def version(html: str) -> str:
    """A short fingerprint of rendered HTML: frame URLs change, and frames reload, when it does."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]
