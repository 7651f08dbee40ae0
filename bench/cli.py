"""``./run bench``: choose scenarios and sizes, run them against a private server, print and save.

Thin, as the ``bus`` and ``switchboard`` commands are: parse, run (:mod:`bench.runner`),
print the table and notes, write the JSON. A bad argument is one line and exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from bench.harness import LAYOUTS, Options
from bench.runner import run
from bench.scenarios import SCENARIOS
from bench.systems import DEFAULT_PEERS, PEERS
from bus.cli import run_cli

PROG = "./run bench"
# (full run, --quick), for the options left out
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "repeat": (3, 1),
    "events": (20_000, 4_000),
    "workers": ([1, 2, 4], [1, 2]),
    "latency_seconds": (10.0, 2.0),
    "soak_events": (1_000_000, 20_000),
    "idle_seconds": (3.0, 1.0),
    "layouts": (["combined", "driver-first", "split"], ["combined", "split"]),
    "notifications": (2_000, 300),
    "provider_latency": ([0.0, 0.1], [0.0, 0.1]),
    "soak_notifications": (200_000, 3_000),
}


def _names(allowed: Sequence[str], what: str, *, empty_ok: bool = False) -> Any:
    """A click callback: comma-separated names, each one of ``allowed``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
        if value is None:
            return None
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not (names or empty_ok):
            given = f"unknown {what} {', '.join(unknown)}" if unknown else f"no {what} given"
            raise click.BadParameter(f"{given}; choose from {', '.join(allowed)}")
        return names

    return parse


def _numbers(what: str, example: str, kind: Callable[[str], float], *, scale: float = 1.0, minimum: float = 0) -> Any:
    """A click callback: comma-separated numbers (``kind`` reads each) of at least ``minimum``,
    times ``scale``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
        if value is None:
            return None
        try:
            numbers = [kind(item) for item in value.split(",") if item.strip()]
        except ValueError:
            numbers = []
        if not numbers or any(not minimum <= n < math.inf for n in numbers):
            raise click.BadParameter(f"takes {what} (at least {minimum:g}), comma-separated, e.g. {example}")
        return [n * scale for n in numbers]

    return parse


@click.command(name="bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--scenario",
    "scenarios",
    default=",".join(SCENARIOS),
    callback=_names(tuple(SCENARIOS), "scenario"),
    help=f"comma-separated: {', '.join(SCENARIOS)}",
)
@click.option("--repeat", type=click.IntRange(min=1), help="runs of each scenario (default 3; --quick 1)")
@click.option("--events", type=click.IntRange(min=100), help="events per run (default 20,000; --quick 4,000)")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("test-output/bench.json"),
    show_default=True,
    help="where to write the report",
)
@click.option(
    "--peers",
    is_flag=False,
    flag_value=",".join(DEFAULT_PEERS),
    default="",
    callback=_names(PEERS, "peer", empty_ok=True),
    help=f"also run peers if installed (bench extra): {', '.join(PEERS)} (default: {', '.join(DEFAULT_PEERS)})",
)
@click.option("--quick", is_flag=True, help="a smoke run with small numbers (about 2 minutes)")
@click.option(
    "--workers",
    callback=_numbers("worker process counts", "1,2,4", int, minimum=1),
    help="worker process counts for scaling (default 1,2,4)",
)
@click.option(
    "--layouts",
    callback=_names(LAYOUTS, "layout"),
    help=f"bus worker layouts for e2e and latency: {', '.join(LAYOUTS)}",
)
@click.option("--rate", type=click.IntRange(min=1), default=500, help="events/s for the latency scenario")
@click.option(
    "--latency-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="how long to publish at --rate (default 10)",
)
@click.option("--soak-events", type=click.IntRange(min=1000), help="events through the soak (default 1,000,000)")
@click.option(
    "--idle-seconds", type=click.FloatRange(min=0), help="idle time before reading a worker's RSS (default 3)"
)
@click.option("--batch", type=click.IntRange(min=1), help="bus workers' batch_size (default: the bus's)")
@click.option("--concurrency", type=click.IntRange(min=1), help="bus workers' concurrency (default: the bus's)")
@click.option("--peer-repeat", type=click.IntRange(min=1), default=1, help="runs of each peer per scenario (default 1)")
@click.option(
    "--threads", type=click.IntRange(min=1), default=8, help="Dramatiq worker threads per process (default 8)"
)
@click.option("--notifications", type=click.IntRange(min=50), help="notifications per channel and run (default 2,000)")
@click.option(
    "--provider-latency",
    callback=_numbers("milliseconds", "0,100", float, scale=0.001),
    help="switchboard: ms the emulators take per answer, comma-separated (default 0,100)",
)
@click.option(
    "--soak-notifications",
    type=click.IntRange(min=100),
    help="notifications through the switchboard soak (default 200,000; --quick 3,000)",
)
def command(**given: Any) -> None:
    """The benchmark: every figure with a baseline measured in the same run."""
    options = options_from(given)
    report, failed = run(options)
    click.echo()
    click.echo(report.table())
    click.echo()
    for note in report.notes:
        click.echo(f"- {note}")
    click.echo(
        f"- load before {report.meta['load_before']['uptime']!r}; after {report.meta['load_after']['uptime']!r}; "
        "the machine is shared: compare ratios within one run"
    )
    report.write(options.json_path)
    click.echo(f"- JSON report: {options.json_path}")
    if failed:
        raise click.ClickException(f"failed scenarios: {', '.join(failed)}")


def options_from(given: dict[str, Any]) -> Options:
    """The run's options: what was given, else the full run's or ``--quick``'s default."""
    pick = 1 if given["quick"] else 0

    def value(name: str) -> Any:
        return DEFAULTS[name][pick] if given[name] is None else given[name]

    return Options(
        scenarios=given["scenarios"],
        repeat=value("repeat"),
        events=value("events"),
        json_path=given["json_path"],
        peers=given["peers"],
        quick=given["quick"],
        workers=value("workers"),
        rate=given["rate"],
        latency_seconds=value("latency_seconds"),
        soak_events=value("soak_events"),
        idle_seconds=value("idle_seconds"),
        layouts=value("layouts"),
        batch_size=given["batch"],
        concurrency=given["concurrency"],
        peer_repeat=given["peer_repeat"],
        threads=given["threads"],
        notifications=value("notifications"),
        provider_latencies=value("provider_latency"),
        soak_notifications=value("soak_notifications"),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The ``python -m bench`` entry point."""
    run_cli(command, PROG, None if argv is None else list(argv))
