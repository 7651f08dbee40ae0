"""``template.toml``: what a template is for, the data it needs, and sample data.

description = "Sent right after sign-up."
default_locale = "en"        # optional: the language of the files without a suffix
category = "account"         # optional: one of [switchboard.categories] (quiet hours hold non-transactional ones)

[digest]                     # optional: events for one recipient inside the window go out as one message
window = "1h"                # with `items` (each event's data), `count`, `first` and `last` in the data
max_items = 100              # a window this full is flushed at once (events before the flush runs still join)
key = ["post_id"]            # data fields that, with the recipient, make one digest

[recipient_limit]            # optional: counted on its own, not against the channel's limit
count = 3                    # messages per recipient per window; 0: no limit at all
window = 600                 # seconds

[fields]
first_name = "str"
trial_days = "int?"          # ? = optional

[sample]
first_name = "Ada"
trial_days = 14
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from switchboard.digests import DigestSpec, parse_digest

from .fields import FieldSpec, parse_fields
from .locales import is_canonical_locale

_KEYS = frozenset({"description", "default_locale", "category", "recipient_limit", "digest", "fields", "sample"})
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class TemplateLimit:
    """A template's own per-recipient limit: ``count`` per ``window`` seconds (0: none)."""

    count: int
    window: float


@dataclass(frozen=True)
class Manifest:
    """A parsed template.toml."""

    description: str
    default_locale: str | None
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    sample: Mapping[str, object] = field(default_factory=dict)
    category: str | None = None
    recipient_limit: TemplateLimit | None = None
    digest: DigestSpec | None = None


def parse_manifest(text: str) -> Manifest:
    """Parse template.toml; ValueError carries a one-line reason (TOML errors included)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid TOML: {exc}") from None
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(_KEYS))})")
    description = document.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("description must be a non-empty string")
    sample = document.get("sample", {})
    if not isinstance(sample, dict):
        raise ValueError("[sample] must be a table")
    return Manifest(
        description=description.strip(),
        default_locale=_default_locale(document.get("default_locale")),
        fields=MappingProxyType(parse_fields(document.get("fields", {}))),
        sample=MappingProxyType(sample),
        category=_category(document.get("category")),
        recipient_limit=_limit(document.get("recipient_limit")),
        digest=parse_digest(document["digest"]) if "digest" in document else None,
    )


def _category(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CATEGORY.match(value):
        raise ValueError(f"category {value!r} must be a name like 'orders'")
    return value


def _limit(value: object) -> TemplateLimit | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"count", "window"}:
        raise ValueError("[recipient_limit] needs count and window (seconds), nothing else")
    count, window = value["count"], value["window"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("[recipient_limit] count must be a whole number, 0 or more")
    if isinstance(window, bool) or not isinstance(window, int | float) or not window > 0:
        raise ValueError("[recipient_limit] window must be a number of seconds above 0")
    return TemplateLimit(count, float(window))


def _default_locale(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_canonical_locale(value):
        raise ValueError(f"default_locale {value!r} must be a tag like 'en' or 'fr_CA'")
    return value
