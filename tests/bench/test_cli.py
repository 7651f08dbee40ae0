"""The benchmark still runs: its command line refuses bad arguments in one line, and a tiny
run goes end to end (private server, worker processes, report, JSON). No figure is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import ROOT
from bench.cli import command, main, options_from
from bench.harness import LAYOUTS, Options
from bench.systems import DEFAULT_PEERS


def parsed(*args: str) -> Options:
    """The options ``./run bench ARGS`` would run with (parsed, nothing run)."""
    with command.make_context("bench", list(args)) as ctx:
        return options_from(ctx.params)


def bench_report(tmp_path: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    """``./run bench ARGS`` in a process of its own: its JSON report (the run must succeed)."""
    report_path = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", *args, "--json", str(report_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(report_path.read_text())
    return report


def metrics_of(report: dict[str, Any]) -> dict[str, Any]:
    return {m["key"]: m for m in report["metrics"]}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scenario", "publish,nope"], "unknown scenario nope; choose from publish, publish_batch"),
        (["--scenario", ","], "no scenario given"),
        (["--peers", "celery"], "unknown peer celery"),
        (["--layouts", "diagonal"], "unknown layout diagonal; choose from combined, driver-first, split"),
        (["--workers", "1,two"], "'--workers': takes worker process counts"),
        (["--workers", "0"], "'--workers': takes worker process counts (at least 1)"),
        (["--provider-latency", "fast"], "'--provider-latency': takes milliseconds"),
        (["--repeat", "0"], "'--repeat': 0 is not in the range x>=1"),
        (["--events", "10"], "'--events': 10 is not in the range x>=100"),
        (["--soak-notifications", "10"], "'--soak-notifications': 10 is not in the range x>=100"),
        (["--latency-seconds", "0"], "'--latency-seconds'"),
        (["--frobnicate"], "No such option '--frobnicate'"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--json", str(tmp_path / "bench.json")])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("./run bench: error: ") and says in err
    assert not (tmp_path / "bench.json").exists()


def test_quick_and_full_defaults_and_what_overrides_them() -> None:
    full, quick = parsed(), parsed("--quick")
    assert (full.repeat, full.events, full.workers, full.layouts) == (3, 20_000, [1, 2, 4], list(LAYOUTS))
    assert (quick.repeat, quick.events, quick.workers, quick.layouts) == (1, 4_000, [1, 2], ["combined", "split"])
    assert full.scenarios == quick.scenarios and "switchboard" in full.scenarios and full.peers == []
    assert full.provider_latencies == [0.0, 0.1] and full.json_path == Path("test-output/bench.json")
    assert (full.soak_notifications, quick.soak_notifications) == (200_000, 3_000)
    given = parsed("--quick", "--repeat", "2", "--workers", "3", "--provider-latency", "0,250", "--peers")
    assert (given.repeat, given.workers, given.provider_latencies) == (2, [3], [0.0, 0.25])
    assert given.peers == list(DEFAULT_PEERS) and given.events == 4_000
    assert parsed("--peers", "dramatiq-driver", "--quick").peers == ["dramatiq-driver"]


@pytest.mark.slow
def test_a_tiny_run_end_to_end(tmp_path: Path) -> None:
    """``publish`` in this process, ``e2e`` in spawned worker processes: 100 events each."""
    report_path = tmp_path / "bench.json"
    args = ["--scenario", "publish,e2e", "--layouts", "combined", "--events", "100", "--repeat", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json", str(report_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "bus publish()" in done.stdout and "raw fan-out floor, 2 procs" in done.stdout
    report = json.loads(report_path.read_text())
    metrics = {m["key"]: m for m in report["metrics"]}
    assert set(metrics) == {
        "publish/raw redis-py RPUSH loop",
        "publish/bus publish()",
        "e2e/bus, 2 procs, combined",
        "e2e/raw fan-out floor, 2 procs",
    }
    assert all(len(m["values"]) == 1 and m["values"][0] > 0 for m in metrics.values())
    assert metrics["publish/bus publish()"]["ratios"].keys() == {"raw loop"}
    assert metrics["e2e/bus, 2 procs, combined"]["ratios"].keys() == {"floor"}
    assert metrics["e2e/bus, 2 procs, combined"]["details"][0]["events"] == 100
    assert set(report["meta"]["scenario_seconds"]) == {"publish", "e2e"} and report["meta"]["workload"]["fanout"] == 3


@pytest.mark.slow
def test_the_limits_scenario_runs(tmp_path: Path) -> None:
    args = ["--scenario", "limits", "--events", "100", "--repeat", "1"]
    metrics = metrics_of(bench_report(tmp_path, *args, timeout=120))
    admit = metrics["limits/admit: 2 circuits + provider and sender rates"]
    assert admit["values"][0] > 0 and admit["ratios"].keys() == {"raw round trip"}
    assert admit["details"][0]["evalsha_per_admit"] == 1.0  # one round trip, one script


@pytest.mark.slow
def test_the_hooks_scenario_runs(tmp_path: Path) -> None:
    metrics = metrics_of(bench_report(tmp_path, "--scenario", "hooks", "--events", "1000", "--repeat", "1"))
    received = metrics["hooks/Twilio callbacks/s through the receiver"]
    assert received["values"][0] > 0 and received["ratios"].keys() == {"bare"}
    assert metrics["hooks/provider events applied/s by one worker"]["values"][0] > 0


@pytest.mark.slow
def test_the_switchboard_scenario_compares_with_both_baselines(tmp_path: Path) -> None:
    args = ["--scenario", "switchboard", "--notifications", "60", "--provider-latency", "0", "--repeat", "1"]
    metrics = metrics_of(bench_report(tmp_path, *args))
    board = metrics["switchboard/mixed: switchboard worker, 1 proc, 100 in flight"]
    assert board["values"][0] > 0 and board["ratios"].keys() == {"direct", "official SDKs"}
    assert metrics["switchboard/mixed: official SDKs called directly, 1 proc, 100 threads"]["values"][0] > 0
    assert metrics["switchboard/mixed TLS: official SDKs CPU per send"]["values"][0] > 0


@pytest.mark.slow
def test_the_switchboard_scaling_scenario_runs(tmp_path: Path) -> None:
    args = ["--scenario", "switchboard_scaling", "--notifications", "60", "--provider-latency", "0", "--repeat", "1"]
    metrics = metrics_of(bench_report(tmp_path, *args))
    four = metrics["switchboard_scaling/mixed: 4 switchboard processes"]
    assert four["values"][0] > 0 and four["ratios"].keys() == {"1 proc"}
    assert four["details"][0]["notifications"] == 60


@pytest.mark.slow
def test_the_switchboard_soak_scenario_runs(tmp_path: Path) -> None:
    report = bench_report(tmp_path, "--scenario", "switchboard_soak", "--soak-notifications", "300")
    metrics = metrics_of(report)
    assert metrics["switchboard_soak/mixed @100 ms, 1 proc, 300 notifications: throughput"]["values"][0] > 0
    assert metrics["switchboard_soak/switchboard RSS at end"]["values"][0] > 0
    series = report["switchboard_soak_series"]
    assert series[0]["notifications"] == 0 and series[-1]["notifications"] == 300
    assert all(sample["worker_mib"] > 0 and sample["server_mib"] > 0 for sample in series)
