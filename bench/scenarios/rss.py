"""``rss``: an idle worker's resident memory: ``bus work --driver`` itself (what a deployment
runs), and each system's benchmark worker process, against ``python`` + redis-py alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import ROOT, systems
from bench.fleet import Fleet
from bench.harness import Bench
from bench.machine import MIB, rss_bytes
from bench.systems import LABELS
from tests.support.polling import wait_for

_FLOOR = (
    "import sys, time, redis; redis.Redis.from_url(sys.argv[1]).ping(); print('ready', flush=True); time.sleep(600)"
)


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    names = ["bus", "raw", *bench.peers]
    for rep in range(options.repeat):
        floor = _floor_rss(bench)
        report.add("rss", "python + redis-py, idle (floor)", floor, "MiB", higher_is_better=False)
        cli = _cli_rss(bench)
        report.add("rss", "bus work --driver (CLI), idle", cli, "MiB", higher_is_better=False, target="<= 40 MiB")
        for name in names:
            if rep >= bench.repeats(name):
                continue
            rss = _harness_rss(bench, name)
            report.add("rss", f"{LABELS[name]} worker process, idle", rss, "MiB", higher_is_better=False)
        bench.log(f"rss {rep + 1}/{options.repeat}: floor {floor:.1f} MiB, bus work CLI {cli:.1f} MiB")
    floor_metric = report.metrics["rss/python + redis-py, idle (floor)"]
    dramatiq = report.metrics.get(f"rss/{LABELS['dramatiq']} worker process, idle")
    for metric in report.metrics.values():
        if metric.scenario == "rss" and metric is not floor_metric:
            report.compare(metric, floor_metric, "floor")
            if metric.name.startswith("bus"):
                report.compare(metric, dramatiq, "Dramatiq")
    report.note(
        f"rss: VmRSS after start-up and {options.idle_seconds:g} s idle; 'worker process' figures are the "
        "benchmark's spawned worker processes (one process: 3 apps + driver; Dramatiq with its threads)"
    )


def _harness_rss(bench: Bench, name: str) -> float:
    bench.flush()
    systems.get(name).prepare(bench.url)
    with Fleet([bench.spec(name, "all")]) as fleet:
        fleet.start()
        fleet.go()
        time.sleep(bench.options.idle_seconds)  # the idle time measured, not a wait
        rss = rss_bytes(fleet.pids[0]) / MIB
        fleet.stop()
    return rss


def _cli_rss(bench: Bench) -> float:
    """The real ``bus work`` command (what a deployment runs), idle on the benchmark's apps."""
    bench.flush()
    bus_command = Path(sys.executable).with_name("bus")
    command = [str(bus_command)] if bus_command.exists() else [sys.executable, "-c", "from bus.cli import main; main()"]
    command += ["work", "bench.systems.bus_app", "--driver", "--redis-url", bench.url]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def registered() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"bus work exited with code {process.returncode} during start-up")
            return bool(bench.redis.scard("resque:workers"))

        wait_for(registered, timeout=30, interval=0.05, message="bus work registered as a worker")
        time.sleep(bench.options.idle_seconds)  # the idle time measured, not a wait
        return rss_bytes(process.pid) / MIB
    finally:
        process.terminate()
        process.wait(30)


def _floor_rss(bench: Bench) -> float:
    process = subprocess.Popen([sys.executable, "-c", _FLOOR, bench.url], stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor process did not start")
        time.sleep(bench.options.idle_seconds)  # the idle time measured, not a wait
        return rss_bytes(process.pid) / MIB
    finally:
        process.kill()
        process.wait(10)
