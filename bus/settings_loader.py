"""Loading settings: one table of the TOML file, then the environment, then overrides.

Every settings object of the project (``[bus]``, ``[web]``, ``[logger]``, ``[switchboard]``) is
a tree of frozen dataclasses that check themselves in ``__post_init__``; this module is the one
place that finds the file, reads the environment, refuses unknown names and turns each value
into its field's type. Dataclasses rather than pydantic keep a bus-only install small: pydantic
adds ~25 ms of import and ~8 MiB to every worker, which would take an idle worker past its
40 MiB budget (measured in issue 21).

Field metadata can say more about a field: ``kind`` (how to describe the expected value in an
error, e.g. "a port number") and ``parse`` (a function that turns the raw value into the field's
value and raises ``ConfigurationError`` itself). Values are never echoed in errors of fields
declared with ``repr=False`` (secrets).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from bus.errors import BusError, ConfigurationError

SETTINGS_FILE_ENV = "BUS_SETTINGS"
DEFAULT_SETTINGS_FILE = "settings.toml"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

T = TypeVar("T")


class Secret:
    """A credential: shown as ``**********`` everywhere (repr, str, errors); ``reveal()`` gives it to the SDK."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret is a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    get_secret_value = reveal
    """The name pydantic's SecretStr uses, for code that takes either."""

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SettingsTable:
    """Where one settings object comes from: its table in the file and its environment variables."""

    name: str
    """The top-level table (``bus``, ``web``...)."""
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Environment variable -> dotted field path inside the table (``elasticsearch.url``)."""


def load(
    cls: type[T],
    table: SettingsTable,
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Defaults, then the file's table (paths relative to the file), then environment, then overrides."""
    env = os.environ if environ is None else environ
    settings = cls()
    file = find_settings_file(path, env)
    if file is not None:
        settings = apply(settings, read_table(file, table.name), str(file), table=table.name)
        settings = _anchor_paths(settings, file.resolve().parent)
    from_env: dict[str, Any] = {}
    for variable, dotted in table.environment.items():
        if env.get(variable):
            _set_dotted(from_env, dotted, env[variable])
    settings = apply(settings, from_env, "environment", table=table.name)
    if overrides:
        settings = apply(settings, {k: v for k, v in overrides.items() if v is not None}, "override", table=table.name)
    return settings


def find_settings_file(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The settings file: the one given, else ``$BUS_SETTINGS``, else ``./settings.toml`` if present."""
    if path:
        return Path(path)
    if environ.get(SETTINGS_FILE_ENV):
        return Path(environ[SETTINGS_FILE_ENV])
    return Path(DEFAULT_SETTINGS_FILE) if Path(DEFAULT_SETTINGS_FILE).is_file() else None


def read_table(file: Path, table: str) -> dict[str, Any]:
    """One top-level table of a TOML settings file ({} if absent)."""
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigurationError(f"settings file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings file {file} is not valid TOML: {exc}") from None
    section = data.get(table, {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"[{table}] in {file} must be a table")
    return section


def apply(base: T, values: Mapping[str, Any], source: str, *, table: str, _path: str = "") -> T:
    """``base`` with ``values`` set: unknown names refused, each value turned into its field's type.

    Every problem of the table is reported at once, in one :class:`ConfigurationError`.
    """
    problems: list[str] = []
    result = _apply(base, values, source, table, _path, problems)
    if problems:
        raise ConfigurationError("; ".join(problems))
    return result


def _apply(base: T, values: Mapping[str, Any], source: str, table: str, path: str, problems: list[str]) -> T:
    cls: type = type(base)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{table}.{path}." if path else f"{table}."
    unknown = sorted(set(values) - set(fields))
    if unknown:
        problems.append(f"unknown setting(s) {', '.join(prefix + name for name in unknown)} in {source}")
    hints = _hints(cls)
    changes: dict[str, Any] = {}
    found = len(problems)
    for name in (n for n in values if n in fields):
        value = values[name]
        dotted = f"{path}.{name}" if path else name
        hint = hints[name]
        nested = _dataclass_of(hint)
        try:
            if nested is not None and not isinstance(value, nested):
                if not isinstance(value, Mapping):
                    raise ConfigurationError(f"[{table}.{dotted}] in {source} must be a table")
                current = getattr(base, name)
                start = current if isinstance(current, nested) else nested()
                changes[name] = _apply(start, value, source, table, dotted, problems)
            else:
                changes[name] = _convert(value, hint, fields[name], prefix + name, source)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if len(problems) > found:
        return base  # the table's own checks would only repeat what is already wrong
    try:
        return dataclasses.replace(base, **changes)  # type: ignore[type-var]
    except ConfigurationError as exc:
        problems.append(f"{exc} (in {source})")
    except (BusError, TypeError, ValueError) as exc:
        problems.append(f"invalid [{table}{'.' + path if path else ''}] in {source}: {exc}")
    return base


def _convert(value: Any, hint: Any, field: dataclasses.Field[Any], name: str, source: str) -> Any:
    parse = field.metadata.get("parse")
    if parse is not None:
        return parse(value)
    wanted = _without_none(hint)
    if value is None and wanted is not hint:
        return None
    converted = _coerce(value, wanted)
    if converted is _INVALID:
        kind = field.metadata.get("kind") or _kind(wanted)
        shown = f", got {value!r}" if field.repr and wanted is not Secret else ""
        raise ConfigurationError(f"{name} must be {kind}{shown} in {source}")
    return converted


_INVALID: Any = object()


def _coerce(value: Any, wanted: Any) -> Any:
    """``value`` as ``wanted``; strings (from the environment) are parsed. ``_INVALID`` if it is not one."""
    origin = typing.get_origin(wanted)
    if origin is tuple or origin is list:
        items = [i.strip() for i in value.split(",") if i.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return _INVALID
        (item_type, *_rest) = typing.get_args(wanted) or (Any,)
        converted = [_coerce(i, item_type) for i in items]
        if any(c is _INVALID for c in converted):
            return _INVALID
        return tuple(converted) if origin is tuple else converted
    if wanted is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        return _INVALID
    if wanted is int or wanted is float:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int) or (wanted is float and isinstance(value, float)):
            return wanted(value)
        if isinstance(value, str):
            try:
                return wanted(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    if wanted is Path:
        if not isinstance(value, str | Path):
            return _INVALID
        return Path(value)
    if isinstance(wanted, type) and issubclass(wanted, Enum):
        try:
            return wanted(value)
        except ValueError:
            return _INVALID
    if wanted is str:
        return value if isinstance(value, str) else _INVALID
    if wanted is Secret:
        return Secret(value) if isinstance(value, str) else value if isinstance(value, Secret) else _INVALID
    if wanted is Any:
        return value
    return value if isinstance(wanted, type) and isinstance(value, wanted) else _INVALID


def _anchor_paths(settings: T, folder: Path) -> T:
    """Relative paths in the tree (defaults included) taken from the settings file's folder."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, field.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[field.name] = folder / value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[field.name] = _anchor_paths(value, folder)
    return dataclasses.replace(settings, **changes) if changes else settings  # type: ignore[type-var]


def _kind(wanted: Any) -> str:
    origin = typing.get_origin(wanted)
    if origin is tuple or origin is list:
        return "a list"
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        Path: "a path",
        Secret: "a string",
    }
    return names.get(wanted, f"a {getattr(wanted, '__name__', wanted)}")


def _without_none(hint: Any) -> Any:
    """``X`` from ``X | None``; the hint itself otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _dataclass_of(hint: Any) -> type | None:
    plain = _without_none(hint)
    return plain if isinstance(plain, type) and dataclasses.is_dataclass(plain) else None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
