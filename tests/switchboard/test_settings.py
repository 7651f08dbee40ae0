"""The example settings file is the documentation: it must load, and cover every key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bus.keys import Keys
from bus.logger.settings import ElasticsearchSinkSettings, FileSinkSettings, LoggerSettings, load_logger_settings
from bus.settings import BusSettings, ObserveSettings, WorkerSettings, load_settings
from bus.web.settings import WebSettings, load_web_settings
from switchboard.app import build_provider_chains
from switchboard.categories import DEFAULT_CATEGORIES
from switchboard.channels import Channel
from switchboard.errors import SettingsError
from switchboard.keys import SwitchboardKeys
from switchboard.providers.outbox import Outbox
from switchboard.settings import SwitchboardSettings, load_switchboard_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "settings.example.toml"


def test_the_example_loads_for_both_the_bus_and_the_switchboard() -> None:
    bus = load_settings(EXAMPLE, environ={})
    board = load_switchboard_settings(EXAMPLE, environ={})
    assert bus.namespace == "resque"
    assert board.templates_dir == ROOT / "templates"
    assert set(board.live_channels().values()) == {"outbox"}  # dev mode by default
    assert board.categories == DEFAULT_CATEGORIES  # the example spells the defaults out
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
    for name, value in _tables(SwitchboardSettings()):
        for field in value.__dataclass_fields__:
            documented_here = field in data["switchboard"].get(name, {}) or f"# {field} =" in text
            assert documented_here, f"switchboard.{name}.{field} is not in settings.example.toml"
    for table, cls in (("web", WebSettings), ("logger", LoggerSettings)):
        for name in cls.__dataclass_fields__:
            assert name in data[table] or f"# {name} =" in text, f"{table}.{name} is not documented"
    for table, sink in (("file", FileSinkSettings), ("elasticsearch", ElasticsearchSinkSettings)):
        for name in sink.__dataclass_fields__:
            assert name in data["logger"][table] or f"# {name} =" in text, f"logger.{table}.{name} is not documented"


def _tables(settings: SwitchboardSettings) -> list[tuple[str, Any]]:
    """Every nested table of the switchboard's settings ([switchboard.smtp], [switchboard.sms]...)."""
    return [
        (name, getattr(settings, name))
        for name in SwitchboardSettings.__dataclass_fields__
        if dataclasses.is_dataclass(getattr(settings, name))
    ]


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


SENDGRID = {"sendgrid": {"api_key": "SG.key"}}
SMTP = {"smtp": {"host": "127.0.0.1", "port": 2525}}


@pytest.mark.parametrize(
    ("table", "chain"),
    [
        ({}, ()),
        (SENDGRID, ("sendgrid",)),
        ({**SENDGRID, **SMTP}, ("sendgrid", "smtp")),
        ({**SENDGRID, **SMTP, "email": {"providers": ["smtp", "sendgrid"]}}, ("smtp", "sendgrid")),
        ({**SENDGRID, **SMTP, "email": {"providers": ["smtp"]}}, ("smtp",)),
        ({"email": {"providers": ["smtp", "sendgrid"]}}, ()),  # nothing configured: dev mode
    ],
)
def test_each_channel_names_its_providers_in_order(table: dict[str, Any], chain: tuple[str, ...]) -> None:
    settings = SwitchboardSettings.from_table(table)
    assert settings.provider_chain(Channel.EMAIL) == chain
    assert settings.live_channels()[Channel.EMAIL] == (chain[0] if chain else "outbox")


def test_a_chain_naming_a_provider_without_credentials_is_refused() -> None:
    settings = SwitchboardSettings.from_table({**SENDGRID, "email": {"providers": ["sendgrid", "smtp"]}})
    with pytest.raises(SettingsError, match=r"smtp without credentials"):
        settings.provider_chain(Channel.EMAIL)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"email": {"providers": ["twilio"]}}, "unknown 'twilio'"),
        ({"sms": {"providers": ["vonage", "vonage"]}}, "same provider twice"),
        ({"sms": {"recipient_limit": -1}}, "recipient_limit"),
        ({"vonage": {"base_url": "http://127.0.0.1:1"}}, "https"),
        ({"smtp": {"host": "relay.example.com", "username": "u", "password": "p", "security": "none"}}, "in clear"),
        ({"smtp": {"security": "tls"}}, "smtp.security"),
    ],
)
def test_bad_channel_and_provider_settings(table: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        SwitchboardSettings.from_table(table)


def test_smtp_and_vonage_secrets_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[switchboard.sms]\nproviders = ["vonage"]\n')
    environ = {
        "SWITCHBOARD_SMTP_HOST": "smtp.example.com",
        "SWITCHBOARD_SMTP_USERNAME": "user",
        "SWITCHBOARD_SMTP_PASSWORD": "smtp-env-password",
        "SWITCHBOARD_VONAGE_API_KEY": "key",
        "SWITCHBOARD_VONAGE_API_SECRET": "vonage-env-secret",
    }
    board = load_switchboard_settings(path, environ=environ)
    assert board.live_channels() == {Channel.EMAIL: "smtp", Channel.SMS: "vonage", Channel.PUSH: "outbox"}
    for secret in ("smtp-env-password", "vonage-env-secret"):
        assert secret not in repr(board)


def test_the_app_builds_each_channel_from_its_chain() -> None:
    settings = SwitchboardSettings.from_table(
        {
            **SENDGRID,
            **SMTP,
            "email": {"providers": ["smtp", "sendgrid"]},
            "vonage": {"api_key": "k", "api_secret": "s"},
        }
    )
    outbox = Outbox(None, SwitchboardKeys(Keys()), size=1)  # never written: only push is in dev mode, and idle
    chains = build_provider_chains(settings, outbox)
    assert [p.name for p in chains[Channel.EMAIL]] == ["smtp", "sendgrid"]
    assert [p.name for p in chains[Channel.SMS]] == ["vonage"]
    assert [p.name for p in chains[Channel.PUSH]] == ["outbox"]
    for provider in (p for chain in chains.values() for p in chain):
        provider.close()
