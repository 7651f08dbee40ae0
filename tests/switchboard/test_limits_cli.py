"""``switchboard circuits`` and ``switchboard limits``: what every worker shares, shown and reset."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bus.keys import Keys
from switchboard.circuits import Circuits, CircuitSettings
from switchboard.cli import main
from switchboard.errors import ProviderConfigurationError
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientLimit, RecipientLimits
from tests.support.clirun import CliRun

ROOT = Path(__file__).resolve().parents[2]
KEYS = SwitchboardKeys(Keys())
SETTINGS = f"""
[switchboard]
templates_dir = "{ROOT / "templates"}"
senders = ["Acme <no-reply@acme.example>"]
[switchboard.sms]
providers = ["twilio", "vonage"]
recipient_limit = 2
recipient_window = 600
[switchboard.twilio]
account_sid = "AC{"e" * 32}"
auth_token = "twilio-token-never-shown"
from_number = "+15550001111"
[switchboard.vonage]
api_key = "vonage-key"
api_secret = "vonage-secret-never-shown"
[switchboard.rate_limits]
twilio = 50
twilio_sender = 1
"""


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> CliRun:
    settings = tmp_path / "settings.toml"
    settings.write_text(SETTINGS)
    return CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))


def test_circuits_show_each_provider_and_reset_one(run: CliRun, r: redis.Redis) -> None:
    Circuits(r, KEYS, CircuitSettings()).record_failure("twilio", ProviderConfigurationError("401", status=401))
    rows = {row["provider"]: row for row in run.json("circuits")}
    assert rows["twilio"]["state"] == "open" and rows["twilio"]["channels"] == ["sms"]
    assert rows["twilio"]["reason"] == "ProviderConfigurationError status 401"
    assert (rows["twilio"]["rate"], rows["twilio"]["sender_rate"]) == (50, 1)
    assert rows["vonage"]["state"] == "closed" and rows["vonage"]["rate"] == 0

    code, out, _ = run("circuits")
    assert code == 0
    twilio_line = next(line for line in out.splitlines() if line.startswith("twilio"))
    assert "open" in twilio_line and "50/s, 1/s per sender" in twilio_line
    assert "never-shown" not in out

    code, out, _ = run("circuits", "--reset", "twilio")
    assert (code, out.strip()) == (0, "circuit of twilio closed")
    assert {row["provider"]: row["state"] for row in run.json("circuits")}["twilio"] == "closed"


def test_resetting_a_provider_no_channel_uses_is_a_one_line_error(run: CliRun) -> None:
    code, _, err = run("circuits", "--reset", "sendgrid")
    assert code == 2 and "no provider 'sendgrid'" in err and len(err.strip().splitlines()) == 1


def test_limits_list_refused_recipients_masked_and_count_one(run: CliRun, r: redis.Redis) -> None:
    limit = RecipientLimit("sms", 2, 600)
    store = RecipientLimits(r, KEYS)
    for delivery in ("a", "b", "c"):
        store.check(limit, ["+14155550123"], f"sms:{delivery}")

    [sms] = [entry for entry in run.json("limits") if entry["scope"] == "sms"]
    [refused] = sms["refused"]
    assert refused["count"] == 2 and refused["limit"] == 2 and not refused["allowed"]
    assert "4155550123" not in refused["recipient"]
    code, out, _ = run("limits")
    assert code == 0 and "sms: 2 per 600 s" in out and "4155550123" not in out

    one = run.json("limits", "--to", "+14155550123", "--channel", "sms")
    assert (one["count"], one["allowed"]) == (2, False)
    code, out, _ = run("limits", "--to", "+14155550123", "--channel", "sms")
    assert "AT THE LIMIT" in out and "4155550123" not in out
    code, _, err = run("limits", "--to", "+14155550123")
    assert code == 2 and "--channel" in err
