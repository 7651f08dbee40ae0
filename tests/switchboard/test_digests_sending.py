"""Digests end to end: events collected for a window, then sent as one message; a crash mid-flush."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from switchboard.app import Switchboard
from switchboard.client import send_email
from switchboard.digests import digest_id_of
from switchboard.preferences import recipient_key
from tests.bus.helpers import FAST_SETTINGS_TOML
from tests.support.emulators import SendGridEmulator
from tests.support.emulators.base import Scripted
from tests.support.polling import wait_for
from tests.switchboard.boards import Make, run
from tests.switchboard.test_sending import SENDER, make_board

__all__ = ["make_board"]
pytestmark = pytest.mark.slow  # one test kills a worker process; all wait out digest windows
ROOT = Path(__file__).resolve().parents[2]
TWO_SECONDS = """description = "Comments, two seconds at a time."
category = "account"

[digest]
window = "2s"
max_items = 1000
key = ["post_id"]

[fields]
post_title = "str"
post_url = "url"
items = "list"
count = "int"
unsubscribe_url = "url?"

[sample]
post_title = "T"
post_url = "https://blog.example.com/posts/42"
items = [{ author = "A", excerpt = "E", post_id = "42" }]
count = 1
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    (folder / "email" / "new_comments" / "template.toml").write_text(TWO_SECONDS)
    return folder


def comment(n: int, post: str = "42") -> dict[str, Any]:
    return {
        "post_title": "Notes",
        "post_url": f"https://blog.example.com/posts/{post}",
        "post_id": post,
        "author": f"author-{n}",
        "excerpt": f"comment number {n}",
    }


def flush_when_due(board: Switchboard) -> int:
    """Deliver the flushes due once the window is over (the scheduler's job), then run them."""
    time.sleep(2.1)
    return board.bus.scheduler().move_due()


def digest_keys(r: redis.Redis) -> list[bytes]:
    return [k for k in r.scan_iter("resque:switchboard:digest:*") if not k.endswith(b":seen")]


def test_a_hundred_events_in_a_window_are_one_message_with_a_hundred_items(
    make_board: Make, sendgrid_emulator: SendGridEmulator, templates: Path, r: redis.Redis
) -> None:
    board = make_board(templates_dir=str(templates))
    for n in range(100):
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(0, post="7"))
    run(board)
    assert sendgrid_emulator.requests_to() == []  # collected, not sent
    assert board.bus.scheduler().move_due() == 0  # the window is still open

    assert flush_when_due(board) >= 2  # one flush per digest (post 42, post 7)
    run(board)
    mails = sorted((r.json for r in sendgrid_emulator.requests_to()), key=lambda m: m["subject"])
    assert [m["subject"] for m in mails] == ['1 new comment on "Notes"', '100 new comments on "Notes"']
    text = mails[1]["content"][0]["value"]
    assert all(f"author-{n}: comment number {n}\n" in text for n in range(100))
    assert text.index("author-0:") < text.index("author-99:")  # in the order they came
    assert digest_keys(r) == []  # sent and forgotten

    # an event after the flush opens the next window
    send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(100))
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 2
    flush_when_due(board)
    run(board)
    assert sendgrid_emulator.requests_to()[-1].json["subject"] == '1 new comment on "Notes"'


def test_digests_honour_preferences(make_board: Make, sendgrid_emulator: SendGridEmulator, templates: Path) -> None:
    board = make_board(templates_dir=str(templates))
    board.bus.publish(
        "set_preference", {"recipient": "ada@example.com", "category": "account", "channel": "email", "allowed": False}
    )
    for n in range(3):
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    run(board)
    flush_when_due(board)
    run(board)
    assert sendgrid_emulator.requests_to() == []
    [record] = board.deliveries.search(status="opted_out", limit=5).deliveries
    assert record.fields["template"] == "new_comments"


def test_a_worker_killed_mid_flush_loses_and_duplicates_nothing(
    make_board: Make,
    sendgrid_emulator: SendGridEmulator,
    templates: Path,
    tmp_path: Path,
    r: redis.Redis,
    redis_url: str,
) -> None:
    board = make_board(templates_dir=str(templates))
    for n in range(100):
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    run(board)
    assert flush_when_due(board) == 1
    # the provider holds the flush's request, then drops it unanswered: the worker dies meanwhile
    sendgrid_emulator.script(Scripted(delay=8.0, drop=True))
    settings = tmp_path / "settings.toml"
    settings.write_text(
        FAST_SETTINGS_TOML
        + f'[switchboard]\ntemplates_dir = "{templates}"\nsenders = ["{SENDER}"]\n'
        + f'[switchboard.sendgrid]\napi_key = "{sendgrid_emulator.api_key}"\nbase_url = "{sendgrid_emulator.url}"\n'
        + "timeout = 30\n"
    )
    env = {**os.environ, "BUS_SETTINGS": str(settings), "BUS_REDIS_URL": redis_url}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "run", "--no-scheduler"], env=env, stdout=log, stderr=log
        )
        try:
            wait_for(lambda: len(sendgrid_emulator.requests_to()) == 1, timeout=30)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert sendgrid_emulator.requests_to()[0].json["subject"] == '100 new comments on "Notes"'
    assert any(b":flushing:" in k for k in digest_keys(r)), "taken for sending, kept until the message is decided"

    time.sleep(2.0)  # the dead worker's heartbeat goes stale; the next worker recovers its flush
    board.deliveries.stale_after = 1.0  # the dead worker's claim is stale by now
    run(board)
    requests = sendgrid_emulator.requests_to()
    assert len(requests) == 2  # the dropped one, then the one sent after recovery
    text = requests[1].json["content"][0]["value"]
    assert requests[1].json["subject"] == '100 new comments on "Notes"'
    assert all(f"author-{n}: comment number {n}\n" in text for n in range(100))
    [record] = board.deliveries.search(status="accepted", limit=5).deliveries
    assert record.fields["template"] == "new_comments"
    assert digest_keys(r) == []
    assert r.lrange("resque:failed", 0, -1) == []


def test_a_full_window_goes_out_at_once(make_board: Make, sendgrid_emulator: SendGridEmulator, templates: Path) -> None:
    toml = templates / "email" / "new_comments" / "template.toml"
    toml.write_text(TWO_SECONDS.replace('window = "2s"', 'window = "1h"').replace("max_items = 1000", "max_items = 5"))
    board = make_board(templates_dir=str(templates))
    for n in range(5):
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    run(board)
    [mail] = [r.json for r in sendgrid_emulator.requests_to()]  # the full window, long before its hour
    assert mail["subject"] == '5 new comments on "Notes"'
    for n in range(5, 7):
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 1
    assert board.sender.digester.digests.pending(digest_id_of_ada()) == 2  # the next window holds the rest


def digest_id_of_ada() -> str:
    return digest_id_of("email", "new_comments", recipient_key(None, "ada@example.com"), ["42"])


def test_max_items_is_a_hard_cap_even_when_events_outrun_the_flush(
    make_board: Make, sendgrid_emulator: SendGridEmulator, templates: Path, r: redis.Redis
) -> None:
    toml = templates / "email" / "new_comments" / "template.toml"
    toml.write_text(TWO_SECONDS.replace("max_items = 1000", "max_items = 5"))
    board = make_board(templates_dir=str(templates))
    for n in range(2 * 5 + 3):  # all collected before the first full window's flush runs
        send_email(bus=board.bus, to="ada@example.com", template="new_comments", data=comment(n))
    run(board)
    flush_when_due(board)  # the last window, 3 items, when its 2 s are over
    run(board)
    texts = [m.json["content"][0]["value"] for m in sendgrid_emulator.requests_to()]
    counts = sorted(sum(f"author-{n}: " in text for n in range(13)) for text in texts)
    assert counts == [3, 5, 5]  # at most max_items each
    for n in range(13):  # none lost, none sent twice
        assert sum(f"author-{n}: comment number {n}\n" in text for text in texts) == 1
    assert digest_keys(r) == []
