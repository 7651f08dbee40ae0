"""Running the real node-queue-bus (the scripts in ``node/``) from tests, always bounded in time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis

from tests.support.polling import wait_for

NODE_DIR = Path(__file__).resolve().parent / "node"
INSTALLED = NODE_DIR / "node_modules" / ".package-lock.json"  # npm writes it when an install completes
NAMESPACE = "resque"  # node-resque adds the ':' itself


def unavailable() -> str | None:
    """Why node-queue-bus cannot run here, or None when it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed to run the real node-queue-bus"
    if not INSTALLED.is_file():
        return f"node-queue-bus is not installed: run `npm ci` in {NODE_DIR} (./run tests does it)"
    return None


class NodeProcess:
    """A long-running script (rider, scheduler): stopped with SIGTERM, killed if it lingers."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class NodeBus:
    """node-queue-bus scripts pointed at one Redis; every process it starts is stopped by ``close``."""

    def __init__(self, redis_url: str, logs: Path) -> None:
        self.redis_url = redis_url
        self.logs = logs
        self.processes: list[NodeProcess] = []

    def env(self) -> dict[str, str]:
        # Fixed zone and locale: node-queue-bus stamps them on every event it publishes.
        return {
            **os.environ,
            "NQB_REDIS_URL": self.redis_url,
            "NQB_NAMESPACE": NAMESPACE,
            "TZ": "UTC",
            "LANG": "en_US.UTF-8",
        }

    def run(self, script: str, *args: str, timeout: float = 30.0) -> Any:
        """Run a short script to completion; returns the JSON it prints."""
        done = subprocess.run(
            ["node", script, *args, "--max-seconds", str(timeout)],
            cwd=NODE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"node {script} {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def publish(self, event_type: str, attributes: dict[str, Any], *extra: str) -> None:
        self.run("publish.js", event_type, json.dumps(attributes), *extra)

    def subscribe(self, app: str, priority: str, job: str, matcher: dict[str, Any]) -> str:
        """node-queue-bus's ``bus.subscribe``; returns the queue it says to work."""
        return str(self.run("subscribe.js", app, priority, job, json.dumps(matcher))["queue"])

    def start(self, script: str, *args: str, max_seconds: float = 60.0) -> NodeProcess:
        """Start a long-running script; it exits by itself after ``max_seconds`` at worst."""
        log = self.logs / f"{Path(script).stem}-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["node", script, *args, "--max-seconds", str(max_seconds)],
                cwd=NODE_DIR,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = NodeProcess(script, process, log)
        self.processes.append(started)
        return started

    def rider(self, *queues: str, drive: bool = False, jobs: tuple[str, ...] = (), record: str = "") -> NodeProcess:
        args = ["--queues", ",".join(queues), "--jobs", ",".join(jobs)]
        if record:
            args += ["--record", record]
        return self.start("rider.js", *args, *(["--drive"] if drive else []))

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


def ridden(r: redis.Redis, key: str, rider: NodeProcess, timeout: float = 15.0) -> dict[str, Any]:
    """The next job a Node rider recorded in ``key``; fails early, with its log, if it died."""

    def recorded() -> dict[str, Any] | None:
        popped = r.blpop([key], timeout=0.5)  # the wait between polls
        if popped is None and not rider.alive():
            raise AssertionError(f"node {rider.name} exited {rider.process.returncode}:\n{rider.output()}")
        entry: dict[str, Any] | None = json.loads(popped[1]) if popped is not None else None
        return entry

    def nothing() -> str:
        return f"node {rider.name} recorded nothing:\n{rider.output()}"

    return wait_for(recorded, timeout=timeout, interval=0, message=nothing)


def failures(r: redis.Redis) -> list[dict[str, Any]]:
    """The entries of Resque's failed list, decoded."""
    return [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]


def deviation(reason: str) -> NoReturn:
    """Mark the running test xfail: node-queue-bus does not do what the wire format says."""
    pytest.xfail(f"node-queue-bus 0.2.1 deviates: {reason}")
