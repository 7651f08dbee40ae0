"""Fixtures for the switchboard's pages: the dashboard app with them, on the test server.

The settings carry a (fake) SendGrid key and Twilio token, so email and SMS count as live
and every test page is one where those secrets could leak; push stays in dev mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from bus import Bus
from bus.web import WebSettings
from switchboard.settings import SwitchboardSettings
from switchboard.web import create_switchboard_app
from tests.web.conftest import Client
from tests.web.test_browser import browser, page  # noqa: F401 - the bus dashboard's Chromium fixtures, reused

ROOT = Path(__file__).resolve().parents[3]
SENDGRID_KEY = "SG.fake-sendgrid-key-5d1e-never-on-a-page"
TWILIO_TOKEN = "fake-twilio-auth-token-9c42-never-on-a-page"
TWILIO_SID = "AC5f0e8d7c6b5a49382716f5e4d3c2b1a0"
SECRETS = (SENDGRID_KEY, TWILIO_TOKEN, TWILIO_SID)


def settings_for(templates: Path = ROOT / "templates", *, live: bool = True) -> SwitchboardSettings:
    """Switchboard settings on ``templates``; ``live`` adds the fake email and SMS credentials."""
    values: dict[str, object] = {"templates_dir": str(templates), "senders": ["Acme <no-reply@acme.example>"]}
    if live:
        values["sendgrid"] = {"api_key": SENDGRID_KEY}
        values["twilio"] = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from_number": "+15550001111"}
    return SwitchboardSettings.from_table(values)


@pytest.fixture(autouse=True)
def _scratch_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings.toml of the checkout leaks into a test."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def board_settings() -> SwitchboardSettings:
    return settings_for()


@pytest.fixture
def app(bus: Bus, board_settings: SwitchboardSettings) -> Starlette:
    return create_switchboard_app(bus, WebSettings(), board_settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[Client]:
    with Client(app, base_url="http://localhost") as c:
        yield c
