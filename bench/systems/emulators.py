"""The provider emulators (SendGrid, Twilio, FCM) in a process of their own.

They are Python HTTP servers and cost CPU: in the benchmark's process they would compete
with it for the GIL; in their own process their CPU time is measured apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import ROOT
from bench.machine import cpu_seconds


class EmulatorProcess:
    """``python -m tests.support.emulators`` on free ports."""

    def __init__(self, workdir: Path, latency: float = 0.0) -> None:
        self.latency = latency
        self.account_file = workdir / "fcm-service-account.json"
        self.module = "tests.support.emulators"
        self.process: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, dict[str, str]] = {}

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", self.module, "--json", "--service-account", str(self.account_file)]
        command += ["--latency", str(self.latency)]
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
        return {"module": self.module, "pid": self.pid, "urls": {k: v["base_url"] for k, v in self.endpoints.items()}}
