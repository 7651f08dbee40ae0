"""Managing preferences: the CLI, apps' set_preference events, and preference_changed announcements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from switchboard.cli import main
from switchboard.preferences import recipient_key
from tests.bus.helpers import queue_jobs
from tests.support.clirun import CliRun
from tests.switchboard.boards import Make, run
from tests.switchboard.test_sending import failures, listen, make_board

__all__ = ["make_board"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> CliRun:
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\n')
    return CliRun(main, capsys, "--redis-url", redis_url, "--settings", str(settings))


def announced(r: redis.Redis) -> list[dict[str, Any]]:
    return [job for job in queue_jobs(r, "bus_incoming") if job.get("bus_event_type") == "preference_changed"]


def one_line_error(cli: CliRun, *args: str, message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_cli_show_set_clear(cli: CliRun, r: redis.Redis) -> None:
    assert cli.json("preferences", "set", "marketing", "email", "off", "--to", "ada@example.com") == {"changed": True}
    assert cli.json("preferences", "set", "marketing", "email", "off", "--to", "ada@example.com") == {"changed": False}
    rows = {
        (row["category"], row["channel"]): row for row in cli.json("preferences", "show", "--to", "ada@example.com")
    }
    assert rows["marketing", "email"]["state"] == "opted out" and rows["marketing", "email"]["source"] == "cli"
    assert rows["marketing", "sms"]["state"] == "sent" and rows["security", "email"]["state"] == "always"
    code, out, _ = cli("preferences", "show", "--to", "ada@example.com")
    assert code == 0 and "opted out" in out and "ada@example.com" not in out
    [event] = announced(r)
    assert (event["category"], event["channel"], event["allowed"]) == ("marketing", "email", False)
    assert event["recipient_key"] == recipient_key(None, "ada@example.com") and "ada" not in json.dumps(event)

    one_line_error(
        cli, "preferences", "set", "security", "email", "off", "--user", "u-1", message="cannot be opted out"
    )
    one_line_error(cli, "preferences", "set", "nope", "email", "off", "--user", "u-1", message="unknown category")
    one_line_error(cli, "preferences", "show", message="exactly one of --user and --to")
    one_line_error(cli, "preferences", "set", "orders", "sms", "off", "--to", "not-a-number", message="E.164")

    assert cli.json("preferences", "clear", "--to", "ada@example.com") == {"removed": 1}
    rows = {
        (row["category"], row["channel"]): row for row in cli.json("preferences", "show", "--to", "ada@example.com")
    }
    assert rows["marketing", "email"]["state"] == "sent"
    assert [e["allowed"] for e in announced(r)] == [False, True]  # clearing an opt-out is announced too


def test_send_names_a_user_id_and_an_inline_category(cli: CliRun, r: redis.Redis) -> None:
    assert cli.json("preferences", "set", "marketing", "sms", "off", "--user", "u-5")["changed"]
    cli.json("send", "sms", "--to", "+14155550123", "--body", "Sale!", "--category", "marketing", "--user-id", "u-5")
    cli.json("send", "sms", "--to", "+14155550123", "--body", "Sale!", "--category", "marketing")
    cli.json("run", "--burst", "--no-scheduler")
    assert sorted(d["status"] for d in cli.json("deliveries")) == ["accepted", "opted_out"]


def test_apps_set_preferences_with_events_and_bad_ones_fail_with_their_reason(make_board: Make, r: redis.Redis) -> None:
    board = make_board()
    seen = listen(board, "preference_changed")
    change = {"user_id": "u-9", "category": "marketing", "channel": "sms", "allowed": False, "source": "settings page"}
    board.bus.publish("set_preference", change)
    board.bus.publish("set_preference", {**change, "category": "security"})
    board.bus.publish("set_preference", {**change, "channel": "fax"})
    board.bus.publish("set_preference", {**change, "allowed": "no"})
    board.bus.publish("set_preference", {k: v for k, v in change.items() if k != "user_id"})
    run(board)
    [choice] = board.preferences.show(recipient_key("u-9", None))
    assert (choice.category, choice.channel, choice.allowed, choice.source) == (
        "marketing",
        "sms",
        False,
        "settings page",
    )
    [event] = seen
    assert event["user_id"] == "u-9" and event["allowed"] is False and event["source"] == "settings page"
    reasons = sorted(entry["error"] for entry in failures(r))
    assert len(reasons) == 4, reasons
    assert any("cannot be opted out" in e for e in reasons) and any("channel must be one of" in e for e in reasons)
    assert any("allowed must be true or false" in e for e in reasons) and any(
        "user_id or a recipient" in e for e in reasons
    )


def crash(*args: object, **kwargs: object) -> str:
    raise SystemExit("the process died between the change and its announcement")


def test_a_change_is_announced_even_when_the_process_dies_before_publishing(
    make_board: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = make_board()
    change = {"user_id": "u-7", "category": "marketing", "channel": "email", "allowed": False, "source": "page"}
    with monkeypatch.context() as m:
        m.setattr(board.bus, "publish", crash)
        m.setattr(board.bus, "publish_with", crash)
        with pytest.raises(SystemExit):
            board.preference_changes.handle(change)
    [choice] = board.preferences.show(recipient_key("u-7", None))
    assert choice.allowed is False  # recorded, and its announcement still owed
    seen = listen(board, "preference_changed")
    board.preference_changes.handle(change)  # the bus runs the job again
    board.preference_changes.handle(change)  # and a duplicate after that announces nothing more
    run(board)
    assert [(e["category"], e["channel"], e["allowed"], e["user_id"]) for e in seen] == [
        ("marketing", "email", False, "u-7")
    ]


def test_forgetting_an_opt_out_is_announced_even_when_the_process_dies_before_publishing(
    make_board: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard.channels import Channel
    from switchboard.preference_changes import Change

    board = make_board()
    key = recipient_key(None, "ada@example.com")
    assert board.preference_changes.apply(Change(key, "marketing", Channel.EMAIL, False, "page"))
    with monkeypatch.context() as m:
        m.setattr(board.bus, "publish", crash)
        m.setattr(board.bus, "publish_with", crash)
        with pytest.raises(SystemExit):
            board.preference_changes.clear(key, "operator")
    assert board.preferences.show(key) == []
    seen = listen(board, "preference_changed")
    assert board.preference_changes.clear(key, "operator") == 0  # run again: nothing left to forget...
    run(board)
    # the opt-out, then its forgetting (owed since the crash), once each
    assert [(e["category"], e["allowed"]) for e in seen] == [("marketing", False), ("marketing", True)]
