"""The provider emulators (SendGrid, Twilio, FCM) in a process of their own.

They are Python HTTP servers and cost CPU: in the benchmark's process they would compete
with it for the GIL; in their own process their CPU time is measured apart. They count the
TCP connections they accept (``stats``); with ``tls`` they serve https under a certificate
authority of their own, which ``trusted`` makes the processes started inside it trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import ROOT
from bench.machine import cpu_seconds


class EmulatorProcess:
    """``python -m tests.support.emulators`` on free ports."""

    def __init__(self, workdir: Path, latency: float = 0.0, *, tls: bool = False) -> None:
        self.latency = latency
        self.tls = tls
        self.account_file = workdir / "fcm-service-account.json"
        self.stats_file = workdir / "emulator-stats.json"
        self.tls_dir = workdir / "emulator-tls"
        self._last_read = 0
        """The number of the last counts read."""
        self.module = "tests.support.emulators"
        self.process: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, dict[str, str]] = {}

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", self.module, "--json", "--service-account", str(self.account_file)]
        command += ["--latency", str(self.latency), "--stats-file", str(self.stats_file)]
        if self.tls:
            command += ["--tls-dir", str(self.tls_dir)]
        self.stats_file.unlink(missing_ok=True)
        self._last_read = 0
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout is not None else ""
        if not line:
            self.stop()
            raise RuntimeError(f"{self.module} did not start")
        self.endpoints = json.loads(line)
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the emulators are not running")
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per emulator, the TCP connections accepted and send requests answered so far.

        Asked with SIGUSR1; the emulators number what they write. Signals of one kind do not
        queue (two sent before the handler runs are one), and a process busy with hundreds of
        connections may answer late: so it is asked again every few seconds until it writes
        counts newer than the last ones read.
        """
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            os.kill(self.pid, signal.SIGUSR1)
            ask_again = time.monotonic() + 3
            while time.monotonic() < min(ask_again, deadline):
                with contextlib.suppress(OSError, ValueError):
                    written = json.loads(self.stats_file.read_text(encoding="utf-8"))
                    if written.get("seq", 0) > self._last_read:
                        self._last_read = written["seq"]
                        return {name: counts for name, counts in written.items() if name != "seq"}
                time.sleep(0.005)
        raise RuntimeError("the emulators did not write their counts")

    @contextlib.contextmanager
    def trusted(self) -> Iterator[None]:
        """Processes started inside trust the emulators' authority (aiohttp via SSL_CERT_FILE,
        google-auth's requests via REQUESTS_CA_BUNDLE); nothing changes without ``tls``."""
        if not self.tls:
            yield
            return
        ca_file = self.endpoints["tls"]["ca_file"]
        saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
        os.environ.update(SSL_CERT_FILE=ca_file, REQUESTS_CA_BUNDLE=ca_file)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        urls = {k: v["base_url"] for k, v in self.endpoints.items() if "base_url" in v}
        return {"module": self.module, "pid": self.pid, "urls": urls, "tls": self.tls}
