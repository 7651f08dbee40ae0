"""The example settings file is the documentation: it must load, and cover every key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bus.logger.settings import ElasticsearchSinkSettings, FileSinkSettings, LoggerSettings, load_logger_settings
from bus.settings import BusSettings, ObserveSettings, WorkerSettings, load_settings
from bus.web.settings import WebSettings, load_web_settings
from switchboard.errors import SettingsError
from switchboard.settings import SwitchboardSettings, load_switchboard_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "settings.example.toml"


def test_the_example_loads_for_both_the_bus_and_the_switchboard() -> None:
    bus = load_settings(EXAMPLE, environ={})
    board = load_switchboard_settings(EXAMPLE, environ={})
    assert bus.namespace == "resque"
    assert board.templates_dir == ROOT / "templates"
    assert set(board.live_channels().values()) == {"outbox"}  # dev mode by default
    assert load_web_settings(EXAMPLE, environ={}).host == "127.0.0.1"
    assert load_logger_settings(EXAMPLE, environ={}).file.path == ROOT / "var" / "log" / "bus-events.jsonl"


def test_the_example_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    data = tomllib.loads(text)
    documented = set(data["bus"]) | set(data["switchboard"])
    for name in BusSettings.__dataclass_fields__:
        assert name in documented or f"# {name} =" in text, f"bus.{name} is not in settings.example.toml"
    for name in WorkerSettings.__dataclass_fields__:
        assert name in data["bus"]["worker"], f"bus.worker.{name} is not documented"
    for name in ObserveSettings.__dataclass_fields__:
        assert name in data["bus"]["observe"], f"bus.observe.{name} is not documented"
    for name in SwitchboardSettings.__dataclass_fields__:
        assert name in documented, f"switchboard.{name} is not documented"
    for table, cls in (("web", WebSettings), ("logger", LoggerSettings)):
        for name in cls.__dataclass_fields__:
            assert name in data[table] or f"# {name} =" in text, f"{table}.{name} is not documented"
    for table, sink in (("file", FileSinkSettings), ("elasticsearch", ElasticsearchSinkSettings)):
        for name in sink.__dataclass_fields__:
            assert name in data["logger"][table] or f"# {name} =" in text, f"logger.{table}.{name} is not documented"


def test_environment_secrets_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[switchboard.twilio]\naccount_sid = "AC1"\nauth_token = "from-file"\nfrom_number = "+15550001111"\n'
    )
    board = load_switchboard_settings(path, environ={"SWITCHBOARD_TWILIO_AUTH_TOKEN": "from-env"})
    assert board.twilio.configured and board.twilio.auth_token is not None
    assert board.twilio.auth_token.reveal() == "from-env"
    assert "from-env" not in repr(board) and "from-env" not in str(board)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[switchboard]\nsenders = ["nobody"]\n', "has no email address"),
        ("[switchboard]\nconcurrency = 0\n", "concurrency"),
        ('[switchboard]\ncolour = "red"\n', "colour"),
        ("[switchboard.fcm]\nservice_account_file = 3\n", "service_account_file"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_switchboard_settings(path, environ={})
