"""Every command of both CLIs, against a Redis that is down, refuses the password, or lacks the db:
one line naming the cause, the URL without its password, a non-zero exit; never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus import Bus, RedisRefused
from bus.backend.embedded import free_port
from tests.support.polling import wait_for
from tests.support.servers import server_binary

PASSWORD = "s3cret-pass-for-tests"
BUS_COMMANDS = [
    ["queues"],
    ["workers"],
    ["apps"],
    ["failed", "list"],
    ["failed", "show", "0"],
    ["failed", "retry", "--all"],
    ["failed", "remove", "--all"],
    ["failed", "clear"],
    ["delayed", "list"],
    ["delayed", "show", "1-x"],
    ["delayed", "remove", "1-x"],
    ["delayed", "clear"],
    ["stats"],
    ["events"],
    ["trace", "1-x"],
    ["who-gets", "signup"],
    ["unsubscribe", "--app", "x"],
]
SWITCHBOARD_COMMANDS = [
    ["deliveries"],
    ["outbox"],
    ["suppressions", "list"],
    ["suppressions", "remove", "email", "a@example.com"],
]


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server that asks for a password and has only two databases."""
    port = free_port()
    directory = tmp_path_factory.mktemp("locked")
    options = ["--requirepass", PASSWORD, "--databases", "2", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", *options, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _accepts(port), timeout=10, message="the locked server did not start")
    yield port
    process.terminate()
    process.wait()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def run_cli(program: str, args: list[str], url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"{program}.cli", *args, "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def cases(locked: int) -> list[tuple[str, str]]:
    closed = free_port()
    return [
        (f"redis://127.0.0.1:{closed}/0", "unreachable"),
        (f"redis://:wrong-{PASSWORD}@127.0.0.1:{locked}/0", "authentication failed"),
        (f"redis://127.0.0.1:{locked}/0", "authentication failed"),  # no password at all
        (f"redis://:{PASSWORD}@127.0.0.1:{locked}/7", "no such database"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("program", "command"),
    [("bus", c) for c in BUS_COMMANDS] + [("switchboard", c) for c in SWITCHBOARD_COMMANDS],
)
def test_each_command_says_what_is_wrong_in_one_line(
    program: str, command: list[str], locked_server: int, tmp_path: Path
) -> None:
    for url, cause in cases(locked_server):
        done = run_cli(program, command, url, tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode != 0, (url, done.stdout)
        assert len(lines) == 1, f"{program} {' '.join(command)} against {url} (exit {done.returncode}):\n{done.stderr}"
        assert cause in lines[0], lines[0]
        assert PASSWORD not in done.stderr + done.stdout


def test_a_wrong_password_is_refused_at_once_not_waited_out(locked_server: int) -> None:
    bus = Bus(f"redis://:nope@127.0.0.1:{locked_server}/0")
    started = time.monotonic()
    with pytest.raises(RedisRefused, match="authentication failed"):
        bus.publish("x", {})
    assert time.monotonic() - started < bus.settings.publish_timeout / 2
