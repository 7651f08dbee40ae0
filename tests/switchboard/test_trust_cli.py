"""The switchboard's command line keeps the promises too: no secret or recipient in any output,
settings checked as ``run`` would, a demo that never mails strangers, the CLI's new options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.settings_loader import Secret
from switchboard.client import send_email, send_push, send_sms
from switchboard.providers import FcmConfig, FcmProvider, PushMessage
from tests.support.clirun import CliRun
from tests.support.emulators import FcmEmulator, SendGridEmulator, ServiceAccount, TwilioEmulator

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = ("ada.private@example.com", "+14155550123", "device-token-private-0123456789")


@pytest.fixture
def live(
    tmp_path: Path,
    redis_url: str,
    sendgrid_emulator: SendGridEmulator,
    twilio_emulator: TwilioEmulator,
    fcm_emulator: FcmEmulator,
    service_account: ServiceAccount,
) -> Iterator[Path]:
    """A settings file with every channel live on the emulators; the secrets in the environment."""
    account = tmp_path / "fcm.json"
    account.write_text(json.dumps(service_account.info(fcm_emulator.token_uri)))
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[bus]\nredis_url = "{redis_url}"\nenvironment = "test"\n'
        f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\nsenders = ["Acme <no-reply@acme.example>"]\n'
        f'[switchboard.sendgrid]\nbase_url = "{sendgrid_emulator.url}"\n'
        f'[switchboard.twilio]\naccount_sid = "{twilio_emulator.account_sid}"\nfrom_number = "+15550001111"\n'
        f'base_url = "{twilio_emulator.url}"\n'
        f'[switchboard.fcm]\nservice_account_file = "{account}"\nbase_url = "{fcm_emulator.url}"\n'
    )
    yield settings


def environment(sendgrid_emulator: SendGridEmulator, twilio_emulator: TwilioEmulator, settings: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BUS_", "SWITCHBOARD_"))},
        "SWITCHBOARD_SENDGRID_API_KEY": sendgrid_emulator.api_key,
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": twilio_emulator.auth_token,
        "BUS_SETTINGS": str(settings),
        "NO_PROXY": "127.0.0.1,localhost",
    }


def switchboard(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


@pytest.mark.slow
@pytest.mark.parametrize("verbosity", ["-vv", "-vvv"])  # -vvv: the SDKs' own HTTP logging too
def test_no_secret_or_recipient_in_any_log_line_at_any_level(
    live: Path,
    tmp_path: Path,
    redis_url: str,
    verbosity: str,
    sendgrid_emulator: SendGridEmulator,
    twilio_emulator: TwilioEmulator,
    fcm_emulator: FcmEmulator,
    service_account: ServiceAccount,
) -> None:
    bus = Bus(redis_url)
    email, number, token = RECIPIENTS
    send_email(bus=bus, to=email, subject="Hi", text="Hello")
    send_email(bus=bus, to="refused@example.com", subject="Hi", text="Hello")
    sendgrid_emulator.script(sendgrid_emulator.error(200 + 202), sendgrid_emulator.error(503))
    send_sms(bus=bus, to=number, body="Your code is 1")
    send_push(bus=bus, to=token, title="T", body="B")
    env = environment(sendgrid_emulator, twilio_emulator, live)
    done = switchboard(verbosity, "run", "--burst", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr  # the debug lines really are there
    secrets = [
        sendgrid_emulator.api_key,
        twilio_emulator.auth_token,
        *[line for line in service_account.private_key_pem.splitlines() if len(line) > 20],
        *fcm_emulator.issued_tokens,
    ]
    output = done.stdout + done.stderr
    for secret in secrets:
        assert secret not in output, f"a secret reached the log at {verbosity}"
    for recipient in RECIPIENTS:
        assert recipient not in output and recipient.lstrip("+") not in output, recipient


def test_check_settings_finds_what_run_would_refuse(
    live: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sendgrid_emulator: SendGridEmulator,
    twilio_emulator: TwilioEmulator,
) -> None:
    from switchboard.cli import main

    for name, value in environment(sendgrid_emulator, twilio_emulator, live).items():
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.setenv(name, value)
    run = CliRun(main, capsys, "--settings", str(live))
    text = live.read_text()
    live.write_text(
        text.replace('from_number = "+15550001111"\n', "").replace(str(tmp_path / "fcm.json"), "/nope.json")
    )
    code, out, _ = run("check-settings")
    assert code == 1
    assert "sms: twilio BROKEN: Twilio needs a from_number or a messaging_service_sid" in out
    assert "push: fcm BROKEN: FCM service account unusable" in out


def test_check_settings_fails_on_template_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard.cli import main

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "sms" / "order_shipped" / "body.txt").write_text("{{ nope(")
    settings = tmp_path / "s.toml"
    settings.write_text(f'[bus]\nredis_url = "redis://127.0.0.1:1/0"\n[switchboard]\ntemplates_dir = "{templates}"\n')
    code, out, _ = CliRun(main, capsys, "--settings", str(settings))("check-settings")
    assert code == 1 and "template problem: sms/order_shipped" in out
    assert "stopped channels: unknown (Redis unreachable)" in out


def test_run_starts_the_channels_that_work_and_stops_the_broken_one(
    live: Path, tmp_path: Path, redis_url: str, sendgrid_emulator: SendGridEmulator, twilio_emulator: TwilioEmulator
) -> None:
    broken = live.read_text().replace(str(tmp_path / "fcm.json"), "/nope.json")
    live.write_text(
        broken.replace("[switchboard.sendgrid]", "[switchboard.retry]\nmax_retries = 0\n[switchboard.sendgrid]")
    )
    bus = Bus(redis_url)
    mail = send_email(bus=bus, to="ada@example.com", subject="Hi", text="Hello")
    send_push(bus=bus, to="tok-1", title="T", body="B")
    env = environment(sendgrid_emulator, twilio_emulator, live)
    done = switchboard("run", "--burst", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "push: not sending until its settings are fixed" in done.stderr
    assert redis.Redis.from_url(redis_url).hget(f"resque:switchboard:delivery:email:{mail}", "status") == b"accepted"
    checked = switchboard("check-settings", "--json", env=env, cwd=tmp_path)
    assert checked.returncode == 1
    assert [s["scope"] for s in json.loads(checked.stdout)["stopped"]] == ["push"]


@pytest.mark.parametrize("base", ["", "/v1/projects"])
def test_the_fcm_base_url_may_name_the_projects_path_or_not(
    fcm_emulator: FcmEmulator, service_account: ServiceAccount, base: str
) -> None:
    config = FcmConfig(
        service_account_json=Secret(json.dumps(service_account.info(fcm_emulator.token_uri))),
        base_url=fcm_emulator.url + base,
        timeout=2,
    )
    provider = FcmProvider(config)
    try:
        result = provider.send(PushMessage(tokens=("tok-1",), title="T", body="B"))
    finally:
        provider.close()
    assert result.message_id and len(fcm_emulator.requests_to()) == 1


def test_the_demo_never_sends_the_samples_to_strangers_on_a_live_channel(
    live: Path, tmp_path: Path, sendgrid_emulator: SendGridEmulator, twilio_emulator: TwilioEmulator
) -> None:
    env = environment(sendgrid_emulator, twilio_emulator, live)
    done = switchboard("demo", "--once", env=env, cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "email is live (sendgrid)" in done.stderr and "give --to" in done.stderr
    assert sendgrid_emulator.requests_to() == [] and twilio_emulator.requests_to() == []
    done = switchboard(
        "demo",
        "--once",
        "--to",
        "me@example.com",
        "--to",
        "+14155550100",
        "--to",
        "my-phone-token",
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert [r.json["personalizations"][0]["to"] for r in sendgrid_emulator.requests_to()] == [
        [{"email": "me@example.com"}]
    ]
    assert [r.form_value("To") for r in twilio_emulator.requests_to()] == ["+14155550100"]


def test_send_takes_cc_bcc_reply_to_a_key_and_a_time(
    capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path
) -> None:
    from switchboard.cli import main

    settings = tmp_path / "s.toml"
    settings.write_text(
        f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\nsenders = ["Acme <no-reply@acme.example>"]\n'
    )
    run = CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))
    code, _, err = run(
        "send",
        "email",
        "--to",
        "ada@example.com",
        "--cc",
        "bob@example.com",
        "--bcc",
        "cat@example.com",
        "--reply-to",
        "help@acme.example",
        "--subject",
        "Hi",
        "--text",
        "Hello",
        "--idempotency-key",
        "k-1",
        "--send-at",
        "10m",
    )
    assert code == 0, err
    r = redis.Redis.from_url(redis_url)
    (delayed,) = Bus(redis_url).delayed.timestamps()
    (job,) = r.lrange(f"resque:delayed:{delayed}", 0, -1)
    event = json.loads(json.loads(job)["args"][0])
    assert (event["cc"], event["bcc"], event["reply_to"], event["idempotency_key"]) == (
        ["bob@example.com"],
        ["cat@example.com"],
        "help@acme.example",
        "k-1",
    )
    code, _, err = run("send", "sms", "--to", "+14155550123", "--body", "x", "--send-at", "tomorrow")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_suppressions_add_checks_the_recipient_and_lists_show_when(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    from switchboard.cli import main

    run = CliRun(main, capsys, "--redis-url", redis_url)
    for channel, bad in (("email", "not-an-address"), ("sms", "5550100"), ("push", "has space")):
        code, _, err = run("suppressions", "add", channel, bad)
        assert code == 2 and f"not a {channel} recipient" in err and bad not in err
    code, _, err = run("suppressions", "add", "sms", "+14155550123")
    assert code == 0, err
    code, out, _ = run("suppressions", "list")
    assert "+1415*****23" in out and "ADDED" in out and "+14155550123" not in out
    (row,) = run.json("suppressions", "list")
    assert row["added"] != "-"


def test_deliveries_since_takes_durations(capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    from switchboard.cli import main

    run = CliRun(main, capsys, "--redis-url", redis_url)
    assert run.json("deliveries", "--since", "10m") == []
    code, _, err = run("deliveries", "--since", "soon")
    assert code == 2 and "expected e.g. 90s, 10m, 2h or 1d" in err
