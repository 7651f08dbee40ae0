"""``template.toml``: what a template is for, the data it needs, and sample data.

description = "Sent right after sign-up."
default_locale = "en"        # optional: the language of the files without a suffix

[fields]
first_name = "str"
trial_days = "int?"          # ? = optional

[sample]
first_name = "Ada"
trial_days = 14
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .fields import FieldSpec, parse_fields
from .locales import is_canonical_locale

_KEYS = frozenset({"description", "default_locale", "fields", "sample"})


@dataclass(frozen=True)
class Manifest:
    """A parsed template.toml."""

    description: str
    default_locale: str | None
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    sample: Mapping[str, object] = field(default_factory=dict)


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
    )


def _default_locale(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_canonical_locale(value):
        raise ValueError(f"default_locale {value!r} must be a tag like 'en' or 'fr_CA'")
    return value
