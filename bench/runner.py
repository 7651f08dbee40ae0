"""Running the chosen scenarios in turn on a private server, and what the report records
about the run: the machine, its load, versions, the options and each scenario's time.

A scenario that fails is noted and the others still run and report.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import ROOT, machine
from bench.harness import Bench, Options
from bench.report import Report
from bench.scenarios import SCENARIOS
from bench.workload import event_bytes, sample_job
from tests.support.servers import RedisProcess, server_binary

PACKAGES = ("redis", "hiredis", "dramatiq", "py-queue-bus")


def run(options: Options) -> tuple[Report, list[str]]:
    """Every scenario of ``options``, in order: the finished report and the scenarios that failed."""
    report = Report(_meta(options))
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp:
        server = RedisProcess(Path(tmp) / "redis", appendonly=False).start()
        try:
            bench = Bench(options, server, Path(tmp), report)
            report.meta["server"] = _server_info(bench)
            bench.log(f"private server {server.url} ({report.meta['server']['version']}, appendonly off)")
            for name in options.scenarios:
                load1 = machine.load()["load1"]
                report.meta["scenario_load"][name] = load1
                bench.log(f"== {name} (load {load1:.2f})")
                started = time.monotonic()
                try:
                    SCENARIOS[name](bench)
                except Exception as exc:  # one scenario failing still reports the others
                    failed.append(name)
                    report.note(f"scenario {name} FAILED: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
                report.meta["scenario_seconds"][name] = round(time.monotonic() - started, 1)
        finally:
            server.stop()
    report.meta["load_after"] = machine.load()
    report.finish()
    return report, failed


def _meta(options: Options) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "bus")),
        "machine": machine.describe(),
        "load_before": machine.load(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
        "workload": {"event_bytes": event_bytes(), "job_bytes": len(sample_job()), "fanout": 3},
        "versions": versions,
        "scenario_seconds": {},
        "scenario_load": {},
    }


def _server_info(bench: Bench) -> dict[str, Any]:
    info: dict[str, Any] = bench.redis.info("server")
    return {
        "binary": server_binary(),
        "version": f"{info.get('redis_version')}",
        "appendonly": "no",
        "save": "",
        "url": bench.url,
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
