"""``switchboard_scaling``: notifications/s of 1, 2 and 4 switchboard worker processes.

The mix of ``switchboard`` with the emulators answering after the last ``--provider-latency``
(100 ms by default), each process keeping ``concurrency`` sends in flight; 2 and 4 processes
are compared with 1 in the same run. It should grow until the cores are saturated (this
machine's CPU count is in the report's meta); the bus's own figures are the ``scaling``
scenario's.
"""

from __future__ import annotations

from bench.harness import Bench
from bench.notifications import MIXED
from bench.sends import through_switchboard
from bench.systems.emulators import EmulatorProcess

PROCESSES = (1, 2, 4)


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    latency = options.provider_latencies[-1]
    at = f" @{latency * 1000:g} ms" if latency else ""
    for rep in range(options.repeat):
        for processes in PROCESSES:
            with EmulatorProcess(bench.workdir, latency) as emulators, emulators.trusted():
                sends = through_switchboard(bench, emulators, MIXED, options.notifications, processes=processes)
            name = f"mixed{at}: {processes} switchboard process{'es' if processes > 1 else ''}"
            report.add("switchboard_scaling", name, sends.rate, "msg/s", details=sends.details())
            bench.log(
                f"switchboard_scaling {rep + 1}/{options.repeat}: {name}: {sends.rate:,.0f}/s "
                f"({sends.cpu_ms:.2f} ms CPU each, all processes)"
            )
    one = report.metrics[f"switchboard_scaling/mixed{at}: 1 switchboard process"]
    for processes in PROCESSES[1:]:
        report.compare(
            report.metrics[f"switchboard_scaling/mixed{at}: {processes} switchboard processes"], one, "1 proc"
        )
