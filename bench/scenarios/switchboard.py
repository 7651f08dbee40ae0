"""``switchboard``: notifications/s of one switchboard worker process against the provider
emulators, and the ratio to the same provider called directly with as many threads.

Per channel, emulator latency (``--provider-latency``) and repeat: N ``send_<channel>``
events are published (through ``switchboard.client``, untimed), then one worker process
drains them (``bench.sends``); then a fresh process sends the same N messages, rendered
before the clock starts, through the same provider class from as many threads. The
emulators run in a process of their own (fresh for every repeat), so their CPU is measured
apart. The gap is the switchboard's work: validation, idempotency claim, rendering, the
delivery record, the outcome event, and the bus's own reserve, drive and ack. Last, the
email run twice more under cProfile (every thread): where a notification's time goes.
"""

from __future__ import annotations

from bench.harness import Bench
from bench.notifications import CHANNELS, TEMPLATES
from bench.profiler import top_cprofile
from bench.sends import Sends, directly, through_switchboard
from bench.switchboard_profile import profile_summary, step_times
from bench.systems.emulators import EmulatorProcess
from switchboard.settings import SwitchboardSettings

THREADS = SwitchboardSettings().concurrency
TARGET = ">= 0.8x direct"
PROFILED = 1000  # notifications per profiled run (cProfile on 9 threads is slow)
LATENCY_RUN = 1000  # notifications per run when the emulators take time to answer


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    n = options.notifications
    for rep in range(options.repeat):
        for latency in options.provider_latencies:
            count = n if not latency else min(n, LATENCY_RUN)
            with EmulatorProcess(bench.workdir, latency) as emulators:
                if rep == 0:
                    bench.log(f"switchboard: emulators in their own process: {emulators.describe()}")
                for channel in CHANNELS:
                    board = through_switchboard(bench, emulators, channel, count)
                    direct = directly(bench, emulators, channel, count)
                    _add(bench, _label(channel, latency), board, direct)
                    _log(bench, rep, _label(channel, latency), board, direct)
    for latency in options.provider_latencies:
        for channel in CHANNELS:
            label = _label(channel, latency)
            metric = report.metrics[f"switchboard/{label}: {_name('switchboard')}"]
            metric.target = TARGET
            report.compare(metric, report.metrics[f"switchboard/{label}: {_name('direct')}"], "direct")
            report.compare(
                report.metrics[f"switchboard/{label}: switchboard CPU per notification"],
                report.metrics[f"switchboard/{label}: direct CPU per send"],
                "direct",
            )
    _profile(bench, n)
    _notes(bench, n)


def _label(channel: str, latency: float) -> str:
    """The channel, and how long the emulators take to answer when they are told to."""
    return f"{channel} @{latency * 1000:g} ms" if latency else channel


def _log(bench: Bench, rep: int, label: str, board: Sends, direct: Sends) -> None:
    a, b = board.details(), direct.details()
    bench.log(
        f"switchboard {rep + 1}/{bench.options.repeat}: {label}: switchboard {board.rate:,.0f}/s "
        f"({board.cpu_ms:.2f} ms CPU each), direct {direct.rate:,.0f}/s ({direct.cpu_ms:.2f} ms CPU each): "
        f"{board.rate / direct.rate:.2f}x; CPU of the emulators {a['emulators_cpu_pct']:.0f}% / "
        f"{b['emulators_cpu_pct']:.0f}%, of others {a['others_cpu_pct']:.0f}% / {b['others_cpu_pct']:.0f}%"
    )


def _name(system: str) -> str:
    if system == "switchboard":
        return f"switchboard worker, 1 proc x {THREADS} threads"
    return f"provider called directly, 1 proc x {THREADS} threads"


def _add(bench: Bench, label: str, board: Sends, direct: Sends) -> None:
    report = bench.report
    report.add("switchboard", f"{label}: {_name('switchboard')}", board.rate, "msg/s", details=board.details())
    report.add("switchboard", f"{label}: {_name('direct')}", direct.rate, "msg/s", details=direct.details())
    report.add("switchboard", f"{label}: switchboard CPU per notification", board.cpu_ms, "ms", higher_is_better=False)
    report.add("switchboard", f"{label}: direct CPU per send", direct.cpu_ms, "ms", higher_is_better=False)


def _profile(bench: Bench, count: int) -> None:
    """The email run twice under cProfile (every thread): in wall time, then in CPU time."""
    options = bench.options
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    base = str(options.json_path.with_name(f"{options.json_path.stem}-profile-switchboard"))
    count = min(count, PROFILED)
    runs: dict[str, tuple[str, Sends]] = {}
    with EmulatorProcess(bench.workdir) as emulators:
        for kind in ("wall", "cpu"):
            prefix = f"{base}-{kind}"
            sends = through_switchboard(bench, emulators, "email", count, profile=prefix, cpu=kind == "cpu")
            runs[kind] = (prefix + ".pstats", sends)
            bench.log(f"switchboard: email under cProfile ({kind} time, every thread): {sends.rate:,.0f}/s")
    email = _label("email", options.provider_latencies[0])
    unprofiled = bench.report.metrics[f"switchboard/{email}: switchboard CPU per notification"].median
    steps = step_times(runs["wall"][0], runs["cpu"][0], count, unprofiled)
    bench.report.extra["switchboard_profile"] = {
        "channel": "email",
        "notifications": count,
        "rate_under_profile": {kind: round(sends.rate, 1) for kind, (_, sends) in runs.items()},
        "steps": steps,
        "cprofile_cpu_self": top_cprofile(runs["cpu"][0], 30),
        "cprofile_wall_self": top_cprofile(runs["wall"][0], 30),
        "files": [path for path, _ in runs.values()],
    }
    rates = {kind: sends.rate for kind, (_, sends) in runs.items()}
    commands = runs["wall"][1].commands
    shown = ", ".join(f"{cmd} {n:g}" for cmd, n in list(commands.items())[:12])
    print(profile_summary(steps, count, THREADS, rates, runs["cpu"][0]), flush=True)
    print(f"-- Redis commands per notification (inside scripts and MULTI included): {shown}", flush=True)


def _notes(bench: Bench, count: int) -> None:
    emulators = "python -m tests.support.emulators"
    templates = ", ".join(f"{channel} '{name}'" for channel, name in TEMPLATES.items())
    bench.report.note(
        f"switchboard: {count:,} notifications per channel and run (templates {templates}, a quarter in French); "
        f"one worker process as `switchboard run` runs it ({THREADS} threads, its queues + bus_incoming); the clock "
        "stops once the bus has recorded every notification's 3 jobs (send event driven, ridden, outcome event driven)"
    )
    bench.report.note(
        f"switchboard: the SendGrid, Twilio and FCM emulators run in a process of their own ({emulators}), fresh "
        "each repeat, and cost CPU on this machine too (emulators_cpu_pct in the JSON details); baseline: the same "
        "provider class, same settings, same messages rendered ahead, from one process with as many threads"
    )
    bench.report.note(
        "switchboard: with emulators that answer at once, both sides are CPU-bound in one process (the GIL), so "
        "the ratio is the CPU per direct send over the CPU per notification; '@N ms' runs (at most "
        f"{LATENCY_RUN:,} notifications) have every answer take N ms, as a real provider's API does (SendGrid, "
        "Twilio and FCM typically take 100-300 ms), and the ratio is what a deployment sees"
    )
