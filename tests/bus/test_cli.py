"""The ``bus`` command line: tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.cli import main
from bus.runtime.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD
from tests.bus.helpers import ROOT, queue_jobs, write_settings
from tests.support.clirun import CliRun

APP = """
import re
from bus import Bus, PRESENT, Retry

bus = Bus()
profile = bus.dispatch("profile")

@profile.subscribe("rating_created")
def recalc(attributes):
    print("recalc", attributes["id"])

@profile.subscribe("user_actions", matcher={"bus_event_type": re.compile(r"^user_")}, queue="critical")
def actions(attributes):
    pass

@profile.subscribe("explode", retry=Retry(max_retries=0))
def explode(attributes):
    raise RuntimeError("exploded " + str(attributes["id"]))
"""


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> CliRun:
    (tmp_path / "profileapp.py").write_text(APP)
    (tmp_path / "brokenapp.py").write_text("RATE = 1 / 0\n")
    write_settings(tmp_path)
    return CliRun(main, capsys, "--redis-url", redis_url)


def test_publish_prints_the_bus_id(run: CliRun, r: redis.Redis) -> None:
    code, out, _ = run("publish", "rating_created", '{"id": 7}')
    assert code == 0
    [event] = queue_jobs(r, "bus_incoming")
    assert out.strip() == event["bus_id"]
    assert event["id"] == 7
    assert run.json("publish", "x")["event_type"] == "x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "x", "{bad json"], "attributes are not valid JSON"),
        (["publish", "x", "[1, 2]"], "must be a JSON object"),
        (["publish"], "Missing argument"),
        (["who-gets", "x", "nope"], "not valid JSON"),
        (["failed", "show", "3"], "no failure #3"),
        (["failed", "retry"], "give failure INDEXES"),
        (["work", "no_such_module"], "cannot import app module"),
        (["subscribe", "brokenapp"], "brokenapp.py:1: ZeroDivisionError: division by zero"),
        (["failed", "list", "--start", "-3"], "-3 is not in the range x>=0"),
        (["delayed", "list", "--limit", "0"], "0 is not in the range x>=1"),
        (["events", "--since", "-5m"], "give a positive duration"),
        (["stats", "--since", "5h"], "give at most 2h"),
        (["queues", "--bogus"], "No such option"),
        (["work", "profileapp", "--concurrency", "0"], "0 is not in the range"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_non_zero(
    run: CliRun, r: redis.Redis, args: list[str], message: str
) -> None:
    code, out, err = run(*args)
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("bus: error: ") and message in err
    assert r.llen("resque:queue:bus_incoming") == 0


def test_subscribe_apps_who_gets_unsubscribe(run: CliRun, r: redis.Redis) -> None:
    code, out, _ = run("subscribe", "profileapp")
    assert (code, out.strip()) == (0, "subscribed profile: 3 subscription(s)")
    code, out, _ = run("apps")
    assert "profile_critical" in out and "(?-mix:^user_)" in out
    assert [row["key"] for row in run.json("apps")] == ["explode", "rating_created", "user_actions"]
    assert [row["key"] for row in run.json("who-gets", "user_paid", '{"id": 1}')] == ["user_actions"]
    code, out, _ = run("who-gets", "nothing_listens")
    assert "no subscription matches" in out
    assert run.json("unsubscribe", "--app", "profile") == {"profile": True}
    assert r.smembers("resque:bus_apps") == set()


def test_work_queues_and_failed_commands(run: CliRun, r: redis.Redis) -> None:
    run("subscribe", "profileapp")
    run("publish", "rating_created", '{"id": 7}')
    run("publish", "explode", '{"id": 8}')
    run("publish", "explode", '{"id": 9}')
    queues = run.json("queues")
    assert {q["name"]: q["pending"] for q in queues["queues"]}["bus_incoming"] == 3

    code, out, _ = run("work", "profileapp", "--driver", "--burst")
    assert code == 0
    assert "recalc 7" in out

    queues = run.json("queues")
    assert all(q["pending"] == 0 for q in queues["queues"])
    assert queues["failed"] == 2
    listing = run.json("failed", "list")
    assert listing["total"] == 2
    assert [f["error"] for f in listing["failures"]] == ["exploded 8", "exploded 9"]
    code, out, _ = run("failed", "list")
    assert "RuntimeError" in out and "2 failure(s) in all" in out
    code, out, _ = run("failed", "show", "1")
    assert "RuntimeError: exploded 9" in out and "in `explode'" in out and '"id": 9' in out

    assert [f["error"] for f in run.json("failed", "list", "--grep", "PLODED 9")["failures"]] == ["exploded 9"]
    assert run.json("failed", "list", "--exception", "KeyError")["failures"] == []

    assert run.json("failed", "retry", "0") == {"retried": 1, "skipped": 0}
    assert [j["id"] for j in queue_jobs(r, "profile_default")] == [8]
    assert run.json("failed", "remove", "--all", "--exception", "KeyError") == {"removed": 0, "skipped": 0}
    assert run.json("failed", "remove", "--all", "--exception", "RuntimeError") == {"removed": 1, "skipped": 0}
    assert run.json("failed", "clear") == {"removed": 0}


def test_workers_lists_live_workers(run: CliRun, redis_url: str) -> None:
    b = Bus(redis_url)
    b.dispatch("app").add("x", lambda a: None)
    import threading

    worker = b.worker(["app_default"], install_signals=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        from tests.support.polling import wait_for

        rows = wait_for(lambda: run.json("workers"))
        assert rows[0]["id"] == worker.id and rows[0]["alive"] is True
    finally:
        worker.request_stop()
        thread.join()
    assert run.json("workers") == []


def test_runs_end_by_saying_what_they_did(run: CliRun, r: redis.Redis) -> None:
    run("subscribe", "profileapp")
    run("publish", "rating_created", '{"id": 7}')
    run("publish", "explode", '{"id": 8}')
    driven = run.json("driver", "--burst")
    assert (driven["processed"], driven["failed"]) == (2, 0) and driven["worker"].endswith(":bus_incoming")
    code, out, _ = run("work", "profileapp", "--burst")
    assert code == 0 and out.splitlines()[-1].endswith("stopped: 2 job(s) processed, 1 failed")
    r.zadd("resque:delayed_queue_schedule", {"1": 1})
    r.rpush("resque:delayed:1", json.dumps({"class": "QueueBus::Worker", "queue": "bus_incoming", "args": ["{}"]}))
    scheduled = run.json("scheduler", "--burst")
    assert scheduled["delivered"] == 1 and scheduled["failed"] == 0


def test_a_worker_command_collects_garbage_as_a_worker_process_should(run: CliRun) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults
    try:
        run("subscribe", "profileapp")
        code, _, err = run("work", "profileapp", "--burst")
        assert code == 0, err
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    finally:
        gc.set_threshold(*before)


def test_help_documents_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bus.cli", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    for command in [
        "publish",
        "subscribe",
        "unsubscribe",
        "work",
        "driver",
        "apps",
        "queues",
        "who-gets",
        "failed",
        "workers",
        "server",
    ]:
        assert command in out


def test_flags_never_silently_lose_to_a_module_that_fixes_its_own_bus(
    capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path, r: redis.Redis
) -> None:
    (tmp_path / "pinnedapp.py").write_text(
        f"from bus import Bus\nbus = Bus({redis_url!r})\nbus.dispatch('pinned').add('x', lambda a: None)\n"
    )
    other = "redis://127.0.0.1:1/0"
    code, _, err = CliRun(main, capsys, "--redis-url", other)("work", "pinnedapp", "--burst")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pinnedapp builds its own Bus" in err and "--redis-url cannot change it" in err
    assert r.hlen("resque:bus_app:pinned") == 0  # nothing was subscribed anywhere
    # The same URL as the module's, or no flag at all: it runs.
    code, _, err = CliRun(main, capsys, "--redis-url", redis_url)("work", "pinnedapp", "--burst")
    assert code == 0, err
    code, _, err = CliRun(main, capsys)("subscribe", "pinnedapp")
    assert code == 0, err
