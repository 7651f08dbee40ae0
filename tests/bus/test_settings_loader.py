"""The one settings loader: types from the fields, environment strings parsed, secrets never echoed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bus.errors import ConfigurationError
from bus.settings_loader import SettingsTable, apply, load


@dataclass(frozen=True, slots=True)
class Inner:
    path: Path = Path("data")
    limit: int = 3
    ratio: float = 0.5
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Outer:
    name: str = "x"
    enabled: bool = False
    tags: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.name == "forbidden":
            raise ConfigurationError("outer.name may not be 'forbidden'")


TABLE = SettingsTable(
    "outer",
    {"OUTER_ENABLED": "enabled", "OUTER_TAGS": "tags", "OUTER_LIMIT": "inner.limit", "OUTER_SECRET": "inner.secret"},
)


def test_file_values_then_environment_strings_parsed_by_field_type(tmp_path: Path) -> None:
    file = tmp_path / "conf.toml"
    file.write_text('[outer]\nname = "from-file"\ntags = ["a"]\n[outer.inner]\nratio = 2\n')
    env = {"OUTER_ENABLED": "yes", "OUTER_TAGS": "b, c", "OUTER_LIMIT": "9", "OUTER_SECRET": "s3cr3t"}
    s = load(Outer, TABLE, file, environ=env, overrides={"name": "flag", "enabled": None})
    assert (s.name, s.enabled, s.tags) == ("flag", True, ("b", "c"))
    assert (s.inner.limit, s.inner.ratio, s.inner.secret) == (9, 2.0, "s3cr3t")
    assert isinstance(s.inner.ratio, float)
    assert s.inner.path == tmp_path / "data"  # relative paths, defaults included, from the file's folder
    assert load(Outer, TABLE, environ={}).inner.path == Path("data")  # no file: relative to the cwd


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[outer]\nnmae = 1\n", {}, "unknown setting(s) outer.nmae in"),
        ("[outer.inner]\nlimt = 1\n", {}, "unknown setting(s) outer.inner.limt in"),
        ("[outer]\ninner = 3\n", {}, "[outer.inner] in"),
        ("[outer.inner]\nlimit = true\n", {}, "outer.inner.limit must be an integer, got True"),
        ("[outer.inner]\nlimit = 1.5\n", {}, "outer.inner.limit must be an integer"),
        ("[outer]\nenabled = 'maybe'\n", {}, "outer.enabled must be true or false"),
        ("[outer]\ntags = 'a'\n", {}, ""),  # a string is a comma-separated list, as from the environment
        ("[outer]\ntags = [1]\n", {}, "outer.tags must be a list"),
        ("[outer]\nname = 'forbidden'\n", {}, "outer.name may not be 'forbidden'"),
        ("", {"OUTER_LIMIT": "many"}, "outer.inner.limit must be an integer, got 'many' in environment"),
    ],
)
def test_bad_values_name_the_setting_and_where_it_came_from(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    file = tmp_path / "conf.toml"
    file.write_text(toml)
    if not message:
        assert load(Outer, TABLE, file, environ=env).tags == ("a",)
        return
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load(Outer, TABLE, file, environ=env)


def test_a_secret_is_never_echoed_in_an_error() -> None:
    with pytest.raises(ConfigurationError) as refused:
        apply(Outer(), {"inner": {"secret": 12345678}}, "override", table="outer")
    assert "outer.inner.secret must be a string" in str(refused.value)
    assert "12345678" not in str(refused.value)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    file = tmp_path / "conf.toml"
    file.write_text('[outer]\nnmae = 1\nenabled = "maybe"\n[outer.inner]\nlimit = "x"\nlimt = 2\n')
    with pytest.raises(ConfigurationError) as refused:
        load(Outer, TABLE, file, environ={})
    text = str(refused.value)
    for problem in (
        "outer.nmae",
        "outer.enabled must be true or false",
        "outer.inner.limit must be",
        "outer.inner.limt",
    ):
        assert problem in text, text
    assert "\n" not in text
