"""Where a switchboard worker's time goes, per notification, from cProfiles of every thread.

Two profiled runs: in wall time, a step's figure is how long a handler thread spent in it
per notification (Redis and HTTP waits included, and waits for the GIL and for a core);
with N sends in flight, throughput is about N / (handler wall time per notification). In
thread CPU time, it is what the step costs the process, whatever the machine's load.
"""

from __future__ import annotations

import pstats
from typing import Any

from bench.profiler import top_cprofile

# (label, where the function is defined, function name); indented labels are parts of the first.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("handler (Sender.handle), in all", "switchboard/sending.py", "handle"),
    ("  validate the event (pydantic)", "switchboard/events.py", "parse_event"),
    ("  claim + lookups (one pipeline: claim script, HMGETs, admission)", "switchboard/sending.py", "_claim"),
    ("  render the template (Jinja2 sandbox)", "switchboard/templating/store.py", "render"),
    ("  provider call (request building + HTTP to the emulator)", "switchboard/providers/", "asend"),
    ("    of which: the SDK builds the request body", "switchboard/providers/sendgrid.py", "_mail"),
    ("  record + outcome event (one pipeline: record script, circuit, RPUSH)", "switchboard/sending.py", "_finish"),
    ("worker loop thread: reserve + ack round trips", "bus/runtime/worker.py", "_exchange"),
    ("worker loop thread: drive incoming events", "bus/runtime/runner.py", "drive"),
)


def step_times(wall_path: str, cpu_path: str, count: int, unprofiled_cpu_ms: float) -> list[dict[str, Any]]:
    """Each step's cumulative time over every thread, per notification: wall and CPU, and the
    CPU share of the whole process scaled to its unprofiled CPU per notification (cProfile
    inflates Python-heavy code most, so that column is an estimate)."""
    wall: dict[Any, Any] = pstats.Stats(wall_path).stats  # type: ignore[attr-defined]
    cpu: dict[Any, Any] = pstats.Stats(cpu_path).stats  # type: ignore[attr-defined]
    handler_wall = _cumulative(wall, *STEPS[0][1:]) or 1.0
    handler_cpu = _cumulative(cpu, *STEPS[0][1:]) or 1.0
    process_cpu = sum(entry[2] for entry in cpu.values()) or 1.0
    rows = [
        {
            "step": "the whole process, every thread",
            "wall_ms": None,
            "cpu_ms": round(1000 * process_cpu / count, 3),
            "cpu_ms_unprofiled": round(unprofiled_cpu_ms, 3),
            "wall_pct_of_handler": None,
            "cpu_pct_of_handler": None,
            "calls_per_notification": None,
        }
    ]
    for label, where, function in STEPS:
        part = label.startswith("  ")
        wall_s, cpu_s = _cumulative(wall, where, function), _cumulative(cpu, where, function)
        rows.append(
            {
                "step": label,
                "wall_ms": round(1000 * wall_s / count, 3),
                "cpu_ms": round(1000 * cpu_s / count, 3),
                "cpu_ms_unprofiled": round(unprofiled_cpu_ms * cpu_s / process_cpu, 3),
                "wall_pct_of_handler": round(100 * wall_s / handler_wall, 1) if part else None,
                "cpu_pct_of_handler": round(100 * cpu_s / handler_cpu, 1) if part else None,
                "calls_per_notification": round(_calls(cpu, where, function) / count, 2),
            }
        )
    return rows


def _matches(key: tuple[str, int, str], where: str, function: str) -> bool:
    filename, _line, name = key
    return name == function and where in filename


def _cumulative(raw: dict[Any, Any], where: str, function: str) -> float:
    return float(sum(entry[3] for key, entry in raw.items() if _matches(key, where, function)))


def _calls(raw: dict[Any, Any], where: str, function: str) -> int:
    return int(sum(entry[1] for key, entry in raw.items() if _matches(key, where, function)))


def profile_summary(
    steps: list[dict[str, Any]], count: int, threads: int, rates: dict[str, float], cpu_path: str
) -> str:
    handler = steps[1]
    lines = [
        "",
        f"== switchboard profile: {count:,} notifications (email, SMS, push), 1 worker process "
        f"({threads} in flight), cProfile on every thread: {rates['wall']:,.0f}/s in wall time, "
        f"{rates['cpu']:,.0f}/s in CPU time (profiling slows it)",
        "-- per notification, summed over threads: wall time (Redis/HTTP/GIL waits included), CPU time, and the",
        "   CPU share scaled to the unprofiled CPU per notification (an estimate: cProfile inflates Python code):",
        f"  {'wall ms':>8} {'%':>5}  {'CPU ms':>7} {'%':>5}  {'~ms':>6}  step",
    ]
    for row in steps:
        wall = f"{row['wall_ms']:8.3f}" if row["wall_ms"] is not None else " " * 8
        wall_pct = f"{row['wall_pct_of_handler']:5.1f}" if row["wall_pct_of_handler"] is not None else " " * 5
        cpu_pct = f"{row['cpu_pct_of_handler']:5.1f}" if row["cpu_pct_of_handler"] is not None else " " * 5
        lines.append(
            f"  {wall} {wall_pct}  {row['cpu_ms']:7.3f} {cpu_pct}  {row['cpu_ms_unprofiled']:6.3f}  {row['step']}"
        )
    ceiling = 1000 * threads / handler["wall_ms"]
    lines.append(
        f"   => {threads} in flight / {handler['wall_ms']:.2f} ms handler wall time = {ceiling:,.0f}/s under cProfile"
    )
    lines.append("-- cProfile self CPU time, every thread:")
    lines += [
        f"  {row['tottime_pct']:5.1f}%  {row['calls']:>9,}  {row['function']}" for row in top_cprofile(cpu_path, 15)
    ]
    return "\n".join(lines)
