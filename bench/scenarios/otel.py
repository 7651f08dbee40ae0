"""``otel``: the e2e drain without OpenTelemetry, with the API installed and no SDK (the
default of a process that installs the extra and configures nothing), and with the SDK
recording every span (batch processor, in-memory exporter).

"Without" hides the package from the worker processes: a stub ``opentelemetry`` that refuses
to import goes first on the path the spawned workers inherit, so the bus takes its
not-installed path exactly as a process without the extra does. The three take turns within
each repeat, so a change of load on the shared machine hits them alike.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.drain import drain_once
from bench.harness import Bench

PROCESSES = 2
WITHOUT = "without the otel extra"
NO_SDK = "extra installed, no SDK (no-op)"
RECORDING = "SDK recording every span"


def _name(label: str) -> str:
    return f"bus, {PROCESSES} procs, combined: {label}"


@contextmanager
def _hidden() -> Iterator[None]:
    """Worker processes spawned in the block cannot import ``opentelemetry``."""
    with tempfile.TemporaryDirectory(prefix="bench-no-otel-") as folder:
        stub = Path(folder) / "opentelemetry"
        stub.mkdir()
        (stub / "__init__.py").write_text('raise ImportError("opentelemetry is hidden for this run")\n')
        sys.path.insert(0, folder)
        try:
            yield
        finally:
            sys.path.remove(folder)


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    for rep in range(options.repeat):
        for label in (WITHOUT, NO_SDK, RECORDING):
            if label == WITHOUT:
                with _hidden():
                    drain = drain_once(bench, "bus", "combined", PROCESSES, options.events)
            else:
                drain = drain_once(bench, "bus", "combined", PROCESSES, options.events, otel_sdk=label == RECORDING)
            report.add("otel", _name(label), drain.rate, "ev/s", details=drain.details())
            report.add("otel", f"workers' CPU per event: {label}", drain.worker_us_per_event, "us")
            bench.log(f"otel {rep + 1}/{options.repeat}: {label}: {drain.rate:,.0f} ev/s")
    metrics = {label: report.metrics[f"otel/{_name(label)}"] for label in (WITHOUT, NO_SDK, RECORDING)}
    metrics[NO_SDK].target = ">= 0.95x without the extra"
    report.compare(metrics[NO_SDK], metrics[WITHOUT], "without the extra")
    report.compare(metrics[RECORDING], metrics[WITHOUT], "without the extra")
    for label in (WITHOUT, NO_SDK, RECORDING):
        report.metrics[f"otel/workers' CPU per event: {label}"].higher_is_better = False
    report.note(
        "otel: each event drives once and rides 3 times: with the SDK recording, 4 spans per event in the workers "
        "(the drive, 3 rides); the publishing process has no SDK, so they are root spans",
    )
