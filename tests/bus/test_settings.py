"""Settings: file, environment and overrides, with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bus import Bus, ConfigurationError, LocalMode, load_settings


def test_defaults_without_file_or_environment() -> None:
    s = load_settings(environ={})
    assert (s.redis_url, s.namespace, s.local_mode) == (None, "resque", None)
    assert s.worker.batch_size > 0 and s.retry.max_retries == 3


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.write_text(
        '[bus]\nredis_url = "redis://file:1/0"\nnamespace = "fromfile"\ndata_dir = "state"\n'
        "[bus.worker]\nbatch_size = 7\n[bus.retry]\nmax_retries = 9\ndelays = [1, 2]\n"
    )
    s = load_settings(path, environ={"BUS_NAMESPACE": "fromenv", "BUS_LOCAL_MODE": "inline"})
    assert s.redis_url == "redis://file:1/0"
    assert s.namespace == "fromenv"
    assert s.local_mode is LocalMode.INLINE
    assert s.data_dir == tmp_path / "state"  # relative to the settings file
    assert (s.worker.batch_size, s.retry.max_retries, s.retry.delays) == (7, 9, (1, 2))
    s = load_settings(path, environ={"BUS_REDIS_URL": "redis://env:2/0"}, redis_url="redis://flag:3/0")
    assert s.redis_url == "redis://flag:3/0"


def test_settings_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[bus]\nnamespace = "viaenv"\n')
    assert load_settings(environ={"BUS_SETTINGS": str(path)}).namespace == "viaenv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bus]\nredis_ulr = 'x'\n", "unknown setting(s) bus.redis_ulr"),
        ("[bus.worker]\nbatch_sise = 3\n", "unknown setting(s) bus.worker.batch_sise"),
        ("[bus.worker]\nbatch_size = 0\n", "worker.batch_size must be a positive number"),
        ("[bus.worker]\nlinger = -0.5\n", "worker.linger must be 0 or a positive number, got -0.5"),
        ("[bus.worker]\nlinger = true\n", "worker.linger must be a number, got True"),
        ("[bus.worker]\nlinger = 'soon'\n", "worker.linger must be a number, got 'soon'"),
        ("[bus.worker]\nheartbeat_interval = 10\ndead_after = 5\n", "dead_after must be longer"),
        ("[bus]\nlocal_mode = 'sometimes'\n", "unknown local mode"),
        ("[bus]\nnamespace = 3\n", "must be a string"),
        ("[bus\n", "not valid TOML"),
        ("[bus.retry]\nmax_retries = -1\n", "negative"),
        ("[bus.observe]\nflush_interval = 120\n", "flush_interval must be between 0 and 60 seconds"),
        ("[bus.observe]\nflush_interval = 30\ntrace_ttl = 20\n", "shorter than observe.trace_ttl"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings(path, environ={})


def test_missing_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/abc", "rediss://127.0.0.1:6379/1x", "redis://127.0.0.1/٣", "redis+sentinel://h:1/m/zero"],
)
def test_a_database_that_is_not_a_number_is_refused(url: str) -> None:
    from bus.backend.connection import parse_url

    with pytest.raises(ConfigurationError, match="is not a number"):
        parse_url(url)
    with pytest.raises(ConfigurationError, match="is not a number"):
        Bus(url).publish("x")


def test_a_linger_of_zero_turns_it_off(tmp_path: Path) -> None:
    path = tmp_path / "bus.toml"
    path.write_text("[bus.worker]\nlinger = 0\n")
    assert load_settings(path, environ={}).worker.linger == 0
