"""Declared data fields (``[fields]`` in template.toml) and checking data against them.

A field is declared as ``name = "type"`` with an optional ``?`` suffix for optional fields:
``user_name = "str"``, ``trial_days = "int?"``. A missing optional field reaches the template
as ``none`` so ``{% if trial_days %}`` works under StrictUndefined. Fields nobody declared are
allowed in the data (publishers may run ahead of templates) but are not passed to the
template: what a template can use is exactly what its template.toml says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from switchboard.errors import TemplateError

RESERVED = frozenset({"locale"})  # set by the renderer itself
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPACE = re.compile(r"\s")  # what str.isspace finds (the same Unicode test), in C
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]+$")


class FieldType(StrEnum):
    """The value types a template can declare; JSON-shaped on purpose (events are JSON)."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    URL = "url"
    EMAIL = "email"
    LIST = "list"
    DICT = "dict"


def _is_url(value: object) -> bool:
    if not isinstance(value, str) or _SPACE.search(value):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


_CHECKS: dict[FieldType, Callable[[object], bool]] = {
    FieldType.STR: lambda v: isinstance(v, str),
    FieldType.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    FieldType.FLOAT: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    FieldType.BOOL: lambda v: isinstance(v, bool),
    FieldType.URL: _is_url,
    FieldType.EMAIL: lambda v: isinstance(v, str) and _EMAIL.match(v) is not None,
    FieldType.LIST: lambda v: isinstance(v, list | tuple),
    FieldType.DICT: lambda v: isinstance(v, Mapping),
}


@dataclass(frozen=True)
class FieldSpec:
    """One declared field: its type and whether the data must carry it."""

    name: str
    type: FieldType
    required: bool = True

    def __str__(self) -> str:
        return f"{self.type.value}{'' if self.required else '?'}"

    def problem(self, value: object) -> str | None:
        """Why ``value`` does not fit this field, or None when it does."""
        if value is None:
            return f"{self.name!r} is required" if self.required else None
        if _CHECKS[self.type](value):
            return None
        return f"{self.name!r} must be {_describe(self.type)}, got {type(value).__name__} {_preview(value)}"


def _describe(kind: FieldType) -> str:
    return {FieldType.URL: "an http(s) url", FieldType.EMAIL: "an email address"}.get(kind, kind.value)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_fields(table: object) -> dict[str, FieldSpec]:
    """``[fields]`` from template.toml; ValueError says which declaration is wrong."""
    if not isinstance(table, Mapping):
        raise ValueError('[fields] must be a table of name = "type"')
    fields: dict[str, FieldSpec] = {}
    for name, declared in table.items():
        if not _NAME.match(name) or name in RESERVED:
            raise ValueError(f"field name {name!r} is not usable in a template")
        fields[name] = _parse_declaration(name, declared)
    return fields


def _parse_declaration(name: str, declared: object) -> FieldSpec:
    text = declared if isinstance(declared, str) else ""
    optional = text.endswith("?")
    try:
        kind = FieldType(text.removesuffix("?"))
    except ValueError:
        valid = ", ".join(kind.value for kind in FieldType)
        raise ValueError(f"field {name!r}: type {declared!r} is not one of {valid} (add ? if optional)") from None
    return FieldSpec(name, kind, required=not optional)


def field_problems(fields: Mapping[str, FieldSpec], data: Mapping[str, object]) -> list[str]:
    """Every way ``data`` misses its declaration, in declaration order."""
    problems = [spec.problem(data.get(name)) for name, spec in fields.items()]
    return [problem for problem in problems if problem is not None]


def validate_data(fields: Mapping[str, FieldSpec], data: object, where: str) -> dict[str, object]:
    """The template's context from event data: declared fields only, absent optionals as None."""
    if not isinstance(data, Mapping):
        raise TemplateError(f"{where}: data must be an object, got {type(data).__name__}")
    problems = field_problems(fields, data)
    if problems:
        raise TemplateError(f"{where}: data does not fit template.toml: {'; '.join(problems)}")
    return {name: data.get(name) for name in fields}
