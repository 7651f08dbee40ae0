"""The ``switchboard`` command: templates, sending, deliveries, outbox, suppressions, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from switchboard.cli import main
from tests.support.clirun import CliRun
from tests.support.emulators import TwilioEmulator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> CliRun:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\nsenders = ["Acme <no-reply@acme.example>"]\n'
        "[switchboard.retry]\nbase_delay = 0.01\n"
    )
    return CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))


def test_templates_list_show_render_check(run: CliRun) -> None:
    keys = [row["key"] for row in run.json("templates", "list")]
    assert "email/welcome" in keys and "sms/password_reset" in keys and "push/order_shipped" in keys
    assert run.json("templates", "show", "welcome", "--channel", "email")["fields"]
    code, out, _ = run("templates", "render", "welcome", "--channel", "email", "--locale", "fr")
    assert code == 0 and "Bienvenue" in out and "--- html ---" in out
    rendered = run.json(
        "templates",
        "render",
        "password_reset",
        "--channel",
        "sms",
        "--data",
        '{"code": "999111", "expires_minutes": 5}',
    )
    assert "999111" in rendered["body"]
    code, out, _ = run("templates", "check")
    assert (code, out.strip()) == (0, "all templates render")


def test_ambiguous_or_unknown_templates_are_one_line_errors(run: CliRun) -> None:
    code, _, err = run("templates", "render", "welcome")
    assert code == 2 and "several channels" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("templates", "show", "nope")
    assert code == 2 and "no template" in err and "nope" in err


def test_check_fails_for_a_broken_template(run: CliRun, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "sms" / "order_shipped" / "body.txt").write_text("Order {{ order_number }} {{ missing_var }}")
    (tmp_path / "settings.toml").write_text(f'[switchboard]\ntemplates_dir = "{templates}"\n')
    code, out, _ = run("templates", "check")
    assert code == 1
    assert any("sms/order_shipped" in line and "missing_var" in line for line in out.splitlines())
    assert not [r for r in caplog.records if "missing_var" in r.getMessage()]  # said once, on stdout


def test_show_prints_field_types_and_the_sample_as_json(run: CliRun) -> None:
    code, out, _ = run("templates", "show", "welcome", "--channel", "email")
    assert code == 0 and "  first_name: str\n" in out and '"first_name": "Ada"' in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deliveries", "--status", "bogus"], "'bogus' is not one of"),
        (["deliveries", "--since", "-5"], "give a positive duration"),
        (["outbox", "--limit", "-1"], "-1 is not in the range x>=1"),
    ],
)
def test_bad_arguments_are_one_line_errors(run: CliRun, args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_send_run_deliveries_outbox_and_suppressions(run: CliRun, r: redis.Redis) -> None:
    assert run.json("send", "email", "--to", "ada@example.com", "--template", "welcome", "--sample")["bus_id"]
    assert run.json("send", "sms", "--to", "+14155550123", "--body", "hello")["bus_id"]
    assert run.json("send", "push", "--topic", "news", "--title", "T", "--body", "B")["bus_id"]
    ran = run.json("run", "--burst", "--no-scheduler")
    assert (ran["processed"], ran["failed"]) == (9, 0)  # 3 events driven, 3 messages sent, 3 outcomes driven
    deliveries = run.json("deliveries")
    assert sorted(d["channel"] for d in deliveries) == ["email", "push", "sms"]
    assert all(d["status"] == "accepted" for d in deliveries)
    assert [d["recipients"] for d in run.json("deliveries", "--to", "ADA@example.com")] == ["a***@example.com"]
    assert run.json("deliveries", "--status", "failed") == []
    outbox = run.json("outbox")
    assert {e["channel"] for e in outbox} == {"email", "sms", "push"}
    code, out, _ = run("outbox", "--channel", "sms")
    assert code == 0
    assert "hello" in out
    assert run.json("outbox", "--clear", "--channel", "sms") == {"removed": 1}
    assert {e["channel"] for e in run.json("outbox")} == {"email", "push"}

    assert run.json("suppressions", "add", "sms", "+14155550123") == {"added": True}
    assert [s["recipient"] for s in run.json("suppressions", "list")] == ["+1415*****23"]
    run("send", "sms", "--to", "+14155550123", "--body", "again")
    run("run", "--burst", "--no-scheduler")
    assert run.json("deliveries", "--status", "suppressed")[0]["channel"] == "sms"
    assert run.json("suppressions", "remove", "sms", "+14155550123") == {"removed": True}


def test_run_records_each_channels_provider_for_the_dashboard(run: CliRun, r: redis.Redis) -> None:
    run("run", "--burst", "--no-scheduler")
    assert r.hgetall("resque:switchboard:live_channels") == {b"email": b"outbox", b"sms": b"outbox", b"push": b"outbox"}
    assert 0 < r.ttl("resque:switchboard:live_channels") <= 300  # gone a while after the last worker stops


def test_invalid_send_arguments_fail_before_publishing(run: CliRun, r: redis.Redis) -> None:
    code, _, err = run("send", "sms", "--to", "0612", "--body", "x")
    assert code == 2 and "E.164" in err and len(err.strip().splitlines()) == 1
    assert r.keys("*") == []


def test_send_checks_the_template_data_before_publishing(run: CliRun, r: redis.Redis) -> None:
    args = ["send", "sms", "--to", "+14155550123", "--template", "password_reset", "--data", '{"code": "123456"}']
    code, _, err = run(*args)
    assert code == 2 and "'expires_minutes' is required" in err and "--no-check" in err
    assert len(err.strip().splitlines()) == 1 and r.keys("*") == []
    code, _, err = run("send", "sms", "--to", "+14155550123", "--template", "nope", "--data", "{}")
    assert code == 2 and "nope" in err and r.keys("*") == []
    assert run.json(*args, "--no-check")["bus_id"]  # published as asked: the switchboard will reject it
    assert r.llen("resque:queue:bus_incoming") == 1


def test_check_settings_reports_channels_without_revealing_secrets(
    run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SENDGRID_API_KEY", "SG.super-secret-value")
    code, out, err = run("check-settings")
    assert code == 0
    assert "email: sendgrid" in out and "sms: outbox (dev mode)" in out
    assert "super-secret" not in out + err
    data = run.json("check-settings")
    assert data["channels"] == {"email": "sendgrid", "sms": "outbox", "push": "outbox"}
    # The webhook receiver is optional: what it lacks is said, and check-settings still passes.
    assert "switchboard hooks would not start: switchboard.public_url is not set" in out
    assert any("webhook_public_key" in p for p in data["hooks_problems"])
    assert "unsubscribe links: off (set [switchboard] public_url and [switchboard.unsubscribe] secret)" in out


def test_check_settings_shows_each_channels_failover_order(
    run: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_VONAGE_API_KEY", "key")
    monkeypatch.setenv("SWITCHBOARD_VONAGE_API_SECRET", "vonage-secret-value")
    monkeypatch.setenv("SWITCHBOARD_VONAGE_FROM_NUMBER", "+15550002222")
    templates = f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\n'
    (tmp_path / "settings.toml").write_text(
        templates + '[switchboard.twilio]\naccount_sid = "AC1"\nauth_token = "t"\nfrom_number = "+15550001111"\n'
        '[switchboard.sms]\nproviders = ["vonage", "twilio"]\n'
    )
    code, out, err = run("check-settings")
    assert code == 0 and "sms: vonage -> twilio" in out and "email: outbox (dev mode)" in out
    assert run.json("check-settings")["providers"]["sms"] == ["vonage", "twilio"]
    assert "vonage-secret-value" not in out + err
    (tmp_path / "settings.toml").write_text(templates + '[switchboard.sms]\nproviders = ["twilio", "vonage"]\n')
    code, _, err = run("check-settings")  # vonage has credentials, twilio none: a chain with a hole
    assert code == 2 and "twilio without credentials" in err and len(err.strip().splitlines()) == 1


def test_bad_settings_are_one_line_without_the_secret(run: CliRun, tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        '[switchboard.sendgrid]\napi_key = "SG.secret-in-file"\ntimeout = -1\nbogus = 1\n'
    )
    code, _, err = run("check-settings")
    assert code == 2
    assert "sendgrid.timeout" in err and "sendgrid.bogus" in err
    assert "secret-in-file" not in err
    assert len(err.strip().splitlines()) == 1


def test_demo_sends_one_of_each_to_the_outbox(run: CliRun, redis_url: str) -> None:
    code, out, _ = run("demo", "--once")
    assert code == 0 and "published send_email (welcome)" in out and "[sms]" in out and "[push]" in out
    shown = run.json("demo", "--once")
    assert shown["bus"] == redis_url
    assert [p["channel"] for p in shown["published"]] == ["email", "sms", "push"]
    assert all(p["bus_id"] for p in shown["published"])
    assert sorted(e["channel"] for e in shown["outbox"]) == ["email", "push", "sms"]
    assert (shown["worker"]["processed"], shown["worker"]["failed"]) == (9, 0)


def test_templates_check_reports_a_category_the_settings_lack(run: CliRun, tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\n'
        '[switchboard.categories.orders]\ndescription = "Orders"\n'
    )
    code, out, _ = run("templates", "check")
    assert code == 1
    assert "email/welcome template.toml: category 'account' is not in [switchboard.categories] (orders)" in out


def test_run_concurrency_is_the_sends_at_a_provider_at_once(
    capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path, twilio_emulator: TwilioEmulator
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\n'
        "[switchboard.twilio]\n"
        f'account_sid = "{twilio_emulator.account_sid}"\nauth_token = "{twilio_emulator.auth_token}"\n'
        f'from_number = "+15550001111"\nbase_url = "{twilio_emulator.url}"\n'
    )
    cli = CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))
    twilio_emulator.latency = 0.2
    for n in range(12):
        assert cli.json("send", "sms", "--to", f"+1415555{n:04d}", "--body", f"code {n}")["bus_id"]
    ran = cli.json("run", "--burst", "--no-scheduler", "--concurrency", "3")
    assert (ran["processed"], ran["failed"]) == (36, 0)
    assert len(twilio_emulator.requests_to()) == 12
    assert twilio_emulator.peak_in_flight == 3
