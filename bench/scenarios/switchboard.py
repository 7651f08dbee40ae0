"""``switchboard``: notifications/s of one switchboard worker process against the provider
emulators, and the ratio to the same providers called directly at the same concurrency.

Per emulator latency (``--provider-latency``) and repeat: N ``send_email``/``send_sms``/
``send_push`` events in turn are published (through ``switchboard.client``, untimed), then
one worker process drains them (``bench.sends``); then a fresh process sends the same N
messages, rendered before the clock starts, through the same provider classes with as many
in flight on one event loop (the best direct client of these providers), and once more
through the providers' official SDKs from as many threads (what an app would write without
the switchboard: ``bench/systems/sdks.py``). The emulators run in a process of their own
(fresh for every repeat), so their CPU is measured apart, and count their TCP connections
(new connections per 100 sends, per provider). Once more with the
emulators over TLS (a certificate authority the run makes), at the last latency, so
handshakes are in the figures. The gap is the switchboard's work: validation, idempotency
claim, rendering, the delivery record, the outcome event, and the bus's own reserve, drive
and ack. Last, the mix run twice more under cProfile (every thread): where a notification's
time goes.
"""

from __future__ import annotations

from bench.harness import Bench
from bench.notifications import MIXED, TEMPLATES
from bench.profiler import top_cprofile
from bench.sends import Sends, directly, through_switchboard
from bench.switchboard_profile import profile_summary, step_times
from bench.systems.emulators import EmulatorProcess
from switchboard.settings import SwitchboardSettings

CONCURRENCY = SwitchboardSettings().concurrency
TARGETS = {0.0: ">= 0.8x official SDKs", 0.1: ">= 400/s, >= 0.9x direct"}
"""Issue 20's: at once, against the SDKs called directly; at 100 ms, against the best direct client."""
PROFILED = 1000  # notifications per profiled run (cProfile on every thread is slow)


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    n = options.notifications
    runs = [(latency, False) for latency in options.provider_latencies] + [(options.provider_latencies[-1], True)]
    for rep in range(options.repeat):
        for latency, tls in runs:
            with EmulatorProcess(bench.workdir, latency, tls=tls) as emulators, emulators.trusted():
                if rep == 0:
                    bench.log(f"switchboard: emulators in their own process: {emulators.describe()}")
                board = through_switchboard(bench, emulators, MIXED, n)
                direct = directly(bench, emulators, MIXED, n)
                sdks = directly(bench, emulators, MIXED, n, system="sdks")
            label = _label(latency, tls)
            _add(bench, label, board, direct, sdks)
            _log(bench, rep, label, board, direct, sdks)
    for latency, tls in runs:
        label = _label(latency, tls)
        metric = report.metrics[f"switchboard/{label}: {_name('switchboard')}"]
        metric.target = TARGETS.get(latency, "")
        report.compare(metric, report.metrics[f"switchboard/{label}: {_name('direct')}"], "direct")
        report.compare(metric, report.metrics[f"switchboard/{label}: {_name('sdks')}"], "official SDKs")
        for baseline in ("direct", "official SDKs"):
            report.compare(
                report.metrics[f"switchboard/{label}: switchboard CPU per notification"],
                report.metrics[f"switchboard/{label}: {baseline} CPU per send"],
                baseline,
            )
    _profile(bench, n)
    _notes(bench, n)


def _label(latency: float, tls: bool = False) -> str:
    """The mix, how long the emulators take to answer when told to, and whether over TLS."""
    return f"mixed{f' @{latency * 1000:g} ms' if latency else ''}{' TLS' if tls else ''}"


def _log(bench: Bench, rep: int, label: str, board: Sends, direct: Sends, sdks: Sends) -> None:
    a, b = board.details(), direct.details()
    bench.log(
        f"switchboard {rep + 1}/{bench.options.repeat}: {label}: switchboard {board.rate:,.0f}/s "
        f"({board.cpu_ms:.2f} ms CPU each, RSS {board.rss_mib:.0f} MiB), direct {direct.rate:,.0f}/s "
        f"({direct.cpu_ms:.2f} ms CPU each): {board.rate / direct.rate:.2f}x; official SDKs {sdks.rate:,.0f}/s "
        f"({sdks.cpu_ms:.2f} ms CPU each): {board.rate / sdks.rate:.2f}x; new connections per 100 sends "
        f"{board.steady_connections} (second half; whole run {board.connections}, direct {direct.connections}); "
        f"CPU of the emulators {a['emulators_cpu_pct']:.0f}% / {b['emulators_cpu_pct']:.0f}%, "
        f"of others {a['others_cpu_pct']:.0f}% / {b['others_cpu_pct']:.0f}%"
    )


def _name(system: str) -> str:
    if system == "switchboard":
        return f"switchboard worker, 1 proc, {CONCURRENCY} in flight"
    if system == "sdks":
        return f"official SDKs called directly, 1 proc, {CONCURRENCY} threads"
    return f"providers called directly, 1 proc, {CONCURRENCY} in flight"


def _add(bench: Bench, label: str, board: Sends, direct: Sends, sdks: Sends) -> None:
    report = bench.report
    report.add("switchboard", f"{label}: {_name('switchboard')}", board.rate, "msg/s", details=board.details())
    report.add("switchboard", f"{label}: {_name('direct')}", direct.rate, "msg/s", details=direct.details())
    report.add("switchboard", f"{label}: {_name('sdks')}", sdks.rate, "msg/s", details=sdks.details())
    report.add("switchboard", f"{label}: switchboard CPU per notification", board.cpu_ms, "ms", higher_is_better=False)
    report.add("switchboard", f"{label}: direct CPU per send", direct.cpu_ms, "ms", higher_is_better=False)
    report.add("switchboard", f"{label}: official SDKs CPU per send", sdks.cpu_ms, "ms", higher_is_better=False)
    report.add("switchboard", f"{label}: switchboard RSS", board.rss_mib, "MiB", higher_is_better=False)
    for provider, rate in board.steady_connections.items():
        if rate is not None:
            name = f"{label}: {provider} new connections per 100 sends (second half)"
            report.add("switchboard", name, rate, "conn", higher_is_better=False, target="<= 1")


def _profile(bench: Bench, count: int) -> None:
    """The mix run twice under cProfile (every thread): in wall time, then in CPU time."""
    options = bench.options
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    base = str(options.json_path.with_name(f"{options.json_path.stem}-profile-switchboard"))
    count = min(count, PROFILED)
    runs: dict[str, tuple[str, Sends]] = {}
    with EmulatorProcess(bench.workdir) as emulators:
        for kind in ("wall", "cpu"):
            prefix = f"{base}-{kind}"
            sends = through_switchboard(bench, emulators, MIXED, count, profile=prefix, cpu=kind == "cpu")
            runs[kind] = (prefix + ".pstats", sends)
            bench.log(f"switchboard: mix under cProfile ({kind} time, every thread): {sends.rate:,.0f}/s")
    unprofiled = bench.report.metrics[
        f"switchboard/{_label(options.provider_latencies[0])}: switchboard CPU per notification"
    ].median
    steps = step_times(runs["wall"][0], runs["cpu"][0], count, unprofiled)
    bench.report.extra["switchboard_profile"] = {
        "channel": MIXED,
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
    print(profile_summary(steps, count, CONCURRENCY, rates, runs["cpu"][0]), flush=True)
    print(f"-- Redis commands per notification (inside scripts and MULTI included): {shown}", flush=True)


def _notes(bench: Bench, count: int) -> None:
    emulators = "python -m tests.support.emulators"
    templates = ", ".join(f"{channel} '{name}'" for channel, name in TEMPLATES.items())
    bench.report.note(
        f"switchboard: {count:,} notifications per run, email, SMS and push in turn (templates {templates}, a "
        f"quarter in French); one worker process as `switchboard run` runs it ({CONCURRENCY} sends in flight on its "
        "event loop, its queues + bus_incoming); the clock stops once the bus has recorded every notification's 3 "
        "jobs (send event driven, ridden, outcome event driven), and every delivery is checked recorded 'sent'"
    )
    bench.report.note(
        f"switchboard: the SendGrid, Twilio and FCM emulators run in a process of their own ({emulators}), fresh "
        "each repeat, and cost CPU on this machine too (emulators_cpu_pct in the JSON details); baselines, each "
        "with the same messages rendered ahead: 'direct', the switchboard's own provider classes with as many in "
        "flight on one event loop in one process (the best direct client we know how to write), and 'official "
        "SDKs', SendGrid's SendGridAPIClient with the Mail helper, Twilio's Client (keep-alive TwilioHttpClient) and "
        "pyfcm's FCMNotification from as many threads; new connections per 100 sends are counted by the emulators "
        "(second half of the run: steady state, once the first sends have opened their connections)"
    )
    bench.report.note(
        "switchboard: with emulators that answer at once, both sides are CPU-bound in one process (the GIL), so "
        "the ratio is the CPU per direct send over the CPU per notification; '@N ms' runs have every answer take "
        "N ms, as a real provider's API does (SendGrid, Twilio and FCM typically take 100-300 ms), and the ratio "
        "is what a deployment sees; 'TLS' runs serve https under a certificate authority the run makes"
    )
