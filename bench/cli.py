"""The command line: choose scenarios, run them against a private server, print and save."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import machine
from bench.clustering import run_cluster
from bench.draining import run_e2e, run_scaling
from bench.harness import LAYOUTS, Bench, Options
from bench.latency import run_latency
from bench.memory import run_rss, run_soak
from bench.observing import run_tracing
from bench.profiling import run_profile
from bench.publishing import run_publish, run_publish_batch, sample_job
from bench.replicating import run_replicas
from bench.report import Report
from bench.switchboarding import run_switchboard
from bench.systems import DEFAULT_PEERS, PEERS
from bench.workload import event_bytes
from tests.support.servers import RedisProcess, server_binary

SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "publish": run_publish,
    "publish_batch": run_publish_batch,
    "e2e": run_e2e,
    "scaling": run_scaling,
    "latency": run_latency,
    "rss": run_rss,
    "soak": run_soak,
    "profile": run_profile,
    "switchboard": run_switchboard,
    "tracing": run_tracing,
    "cluster": run_cluster,
    "replicas": run_replicas,
}
# (full run, --quick)
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "repeat": (3, 1),
    "events": (20_000, 4_000),
    "workers": ("1,2,4", "1,2"),
    "latency_seconds": (10.0, 2.0),
    "soak_events": (1_000_000, 20_000),
    "idle_seconds": (3.0, 1.0),
    "layouts": ("combined,driver-first,split", "combined,split"),
    "notifications": (2_000, 300),
    "provider_latency": ("0,100", "0,100"),
}
PACKAGES = ("redis", "hiredis", "dramatiq", "py-queue-bus")


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="./run bench", description=__doc__)
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--repeat", type=int, help="runs of each scenario (default 3; --quick 1)")
    parser.add_argument("--events", type=int, help="events per run (default 20,000; --quick 4,000)")
    parser.add_argument("--json", type=Path, default=Path("test-output/bench.json"), help="where to write the report")
    parser.add_argument(
        "--peers",
        nargs="?",
        const=",".join(DEFAULT_PEERS),
        default="",
        help=f"also run peers if installed (bench extra): {', '.join(PEERS)} (default: {', '.join(DEFAULT_PEERS)})",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with small numbers (about 2 minutes)")
    parser.add_argument("--workers", help="worker process counts for scaling (default 1,2,4)")
    parser.add_argument("--layouts", help=f"bus worker layouts for e2e and latency: {', '.join(LAYOUTS)}")
    parser.add_argument("--rate", type=int, default=500, help="events/s for the latency scenario")
    parser.add_argument("--latency-seconds", type=float, help="how long to publish at --rate (default 10)")
    parser.add_argument("--soak-events", type=int, help="events through the soak (default 1,000,000)")
    parser.add_argument("--idle-seconds", type=float, help="idle time before reading a worker's RSS (default 3)")
    parser.add_argument("--batch", type=int, help="bus workers' batch_size (default: the bus's)")
    parser.add_argument("--concurrency", type=int, help="bus workers' concurrency (default: the bus's)")
    parser.add_argument("--peer-repeat", type=int, default=1, help="runs of each peer per scenario (default 1)")
    parser.add_argument("--threads", type=int, default=8, help="Dramatiq worker threads per process (default 8)")
    parser.add_argument("--notifications", type=int, help="notifications per channel and run (default 2,000)")
    parser.add_argument(
        "--provider-latency", help="switchboard: ms the emulators take per answer, comma-separated (default 0,100)"
    )
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if any(p not in PEERS for p in peers):
        parser.error(f"--peers takes {', '.join(PEERS)}")
    pick = 1 if args.quick else 0

    def value(name: str) -> Any:
        given = getattr(args, name)
        return DEFAULTS[name][pick] if given is None else given

    layouts = [layout.strip() for layout in str(value("layouts")).split(",") if layout.strip()]
    if any(layout not in LAYOUTS for layout in layouts) or not layouts:
        parser.error(f"--layouts takes {', '.join(LAYOUTS)}")
    workers = [int(w) for w in str(value("workers")).split(",") if w.strip()]
    try:
        latencies = [float(ms) / 1000 for ms in str(value("provider_latency")).split(",") if ms.strip()]
    except ValueError:
        parser.error("--provider-latency takes milliseconds, comma-separated, e.g. 0,100")
    return Options(
        scenarios=scenarios,
        repeat=max(1, value("repeat")),
        events=max(100, value("events")),
        json_path=args.json,
        peers=peers,
        quick=args.quick,
        workers=workers,
        rate=args.rate,
        latency_seconds=value("latency_seconds"),
        soak_events=max(1000, value("soak_events")),
        idle_seconds=value("idle_seconds"),
        layouts=layouts,
        batch_size=args.batch,
        concurrency=args.concurrency,
        peer_repeat=max(1, args.peer_repeat),
        threads=args.threads,
        notifications=max(50, value("notifications")),
        provider_latencies=latencies or [0.0],
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = parse(argv)
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
    print()
    print(report.table())
    print()
    for note in report.notes:
        print(f"- {note}")
    print(
        f"- load before {report.meta['load_before']['uptime']!r}; after {report.meta['load_after']['uptime']!r}; "
        "the machine is shared: compare ratios within one run"
    )
    report.write(options.json_path)
    print(f"- JSON report: {options.json_path}")
    if failed:
        sys.exit(f"failed scenarios: {', '.join(failed)}")


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
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
