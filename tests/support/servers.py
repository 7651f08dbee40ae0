"""Private Redis-compatible server processes for tests: start, kill, restart, inspect."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from bus.backend.embedded import find_server_binary, free_port, ping
from tests.support.polling import wait_for


def server_binary() -> str:
    """Debian's redis-server when present (what production runs), else the packaged Valkey."""
    return shutil.which("redis-server") or find_server_binary()


class RedisProcess:
    """One server on a free loopback port with its own data directory and append-only file."""

    def __init__(self, directory: Path, *, appendonly: bool = True, port: int | None = None) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def start(self) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.directory / "server.log"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        wait_for(
            lambda: ping(self.port) and client.ping(),  # a server still loading its data answers BUSY
            timeout=10,
            interval=0.01,
            message=f"redis-server did not start on {self.port}: {self.directory / 'server.log'}",
            not_yet=(redis.exceptions.BusyLoadingError,),
        )
        return self

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
