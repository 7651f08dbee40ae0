"""Locale tags, file-name suffixes and the fallback rule (``fr_CA`` -> ``fr`` -> default).

One rule serves parts, layouts and partials alike: ``body.html`` asked for in ``fr_CA``
is ``body.fr_CA.html`` if it exists, else ``body.fr.html``, else ``body.html``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from switchboard.errors import TemplateError

# Two-letter languages only, so a dotted file name like ``button.min.html`` is not a locale.
_LOCALE = re.compile(r"^([a-zA-Z]{2})(?:[-_]([a-zA-Z]{2}))?$")


def normalize_locale(tag: str) -> str:
    """``fr-ca`` and ``FR_CA`` both become ``fr_CA``; anything else is a TemplateError."""
    match = _LOCALE.match(tag.strip())
    if match is None:
        raise TemplateError(f"invalid locale {tag!r} (expected a tag like 'fr' or 'fr_CA')")
    language, region = match.groups()
    return language.lower() if region is None else f"{language.lower()}_{region.upper()}"


def is_canonical_locale(tag: str) -> bool:
    """True for a tag written the way file names must write it (``fr``, ``fr_CA``)."""
    try:
        return normalize_locale(tag) == tag
    except TemplateError:
        return False


def language(tag: str) -> str:
    """The language of a tag: ``fr_CA`` -> ``fr``."""
    return tag.split("_", 1)[0]


def fallback_chain(tag: str) -> tuple[str, ...]:
    """The suffixes to try, most specific first; the unsuffixed file is always last."""
    lang = language(tag)
    return (tag,) if tag == lang else (tag, lang)


def split_locale(file_name: str) -> tuple[str, str | None]:
    """``body.fr.html`` -> (``body.html``, ``fr``); ``body.html`` -> (``body.html``, None)."""
    pieces = file_name.split(".")
    if len(pieces) >= 3 and is_canonical_locale(pieces[-2]):
        return ".".join([*pieces[:-2], pieces[-1]]), pieces[-2]
    return file_name, None


def with_locale(name: str, tag: str) -> str:
    """``partials/footer.html`` + ``fr`` -> ``partials/footer.fr.html``."""
    folder, _, file_name = name.rpartition("/")
    stem, dot, extension = file_name.rpartition(".")
    localized = f"{stem}.{tag}.{extension}" if dot else f"{file_name}.{tag}"
    return f"{folder}/{localized}" if folder else localized


def resolve(name: str, chain: tuple[str, ...], existing: Collection[str]) -> str | None:
    """The file that serves ``name`` for ``chain``, or None when there is none at all."""
    if split_locale(name.rpartition("/")[2])[1] is None:
        for tag in chain:
            candidate = with_locale(name, tag)
            if candidate in existing:
                return candidate
    return name if name in existing else None


def file_locale(path: str) -> str | None:
    """The locale suffix of a stored file path, None for a default-locale file."""
    return split_locale(path.rpartition("/")[2])[1]
