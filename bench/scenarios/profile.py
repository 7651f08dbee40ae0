"""``profile``: where the time goes, in the drain path (one worker process) and in ``publish``.

The worker runs under cProfile and a wall-clock sampler at once; Redis's own view comes
from ``INFO commandstats`` over the same drain. Everything goes to the JSON report, the
heaviest lines to the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import systems
from bench.drain import drain_once
from bench.harness import Bench
from bench.profiler import profiled, top_cprofile, top_samples
from bench.workload import FANOUT, event

SHOWN = 15


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    worker_prefix = str(options.json_path.with_name(f"{options.json_path.stem}-profile-worker"))
    drain = drain_once(bench, "bus", "combined", 1, options.events, profile=worker_prefix)
    report.add("profile", "bus, 1 proc, profiled drain", drain.rate, "ev/s", details=drain.details())
    bench.log(f"profile: drain under cProfile + sampler: {drain.rate:,.0f} ev/s")
    publish_prefix = str(options.json_path.with_name(f"{options.json_path.stem}-profile-publish"))
    _profile_publish(bench, publish_prefix, min(options.events, 10_000))
    commands = sorted(drain.commandstats.items(), key=lambda item: item[1]["usec"], reverse=True)
    profile: dict[str, Any] = {
        "drain": {
            "events": drain.events,
            "seconds": drain.seconds,
            "worker_cpu_pct": drain.worker_cpu_pct,
            "server_cpu_pct": drain.server_cpu_pct,
            "cprofile_self": top_cprofile(worker_prefix + ".pstats", 30),
            "cprofile_cumulative": top_cprofile(worker_prefix + ".pstats", 30, sort="cumtime"),
            "sampled": top_samples(worker_prefix + ".samples.json", 30),
            "redis_commands": [
                {
                    "command": name,
                    "calls": values["calls"],
                    "calls_per_event": round(values["calls"] / drain.events, 3),
                    "usec_per_call": values["usec_per_call"],
                    "usec_per_event": round(values["usec"] / drain.events, 2),
                }
                for name, values in commands
            ],
            "files": [worker_prefix + ".pstats", worker_prefix + ".samples.json"],
        },
        "publish": {
            "cprofile_self": top_cprofile(publish_prefix + ".pstats", 20),
            "sampled": top_samples(publish_prefix + ".samples.json", 20),
        },
    }
    report.extra["profile"] = profile
    print(summary(profile), flush=True)


def _profile_publish(bench: Bench, prefix: str, count: int) -> None:
    bench.flush()
    publisher = systems.get("bus").publisher(bench.url)
    events = [event(i) for i in range(count)]
    with profiled(prefix):
        for attributes in events:
            publisher.publish(attributes)
    publisher.close()


def summary(profile: dict[str, Any]) -> str:
    drain = profile["drain"]
    lines = [
        "",
        f"== profile: drain of {drain['events']:,} events x {FANOUT} by 1 worker process "
        f"(worker {drain['worker_cpu_pct']:.0f}% CPU, Redis {drain['server_cpu_pct']:.0f}% CPU)",
        "-- cProfile, self time (share of profiled CPU):",
    ]
    lines += [
        f"  {row['tottime_pct']:5.1f}%  {row['calls']:>9,}  {row['function']}" for row in drain["cprofile_self"][:SHOWN]
    ]
    lines.append("-- wall-clock samples of the worker's main thread: self (innermost Python function):")
    lines += [f"  {row['pct']:5.1f}%  {row['function']}" for row in drain["sampled"]["self"][:SHOWN]]
    lines.append("-- wall-clock samples: total (function on the stack):")
    lines += [f"  {row['pct']:5.1f}%  {row['function']}" for row in drain["sampled"]["total"][:SHOWN]]
    lines.append("-- Redis server time per event (exec and eval include the commands they run):")
    lines += [
        f"  {row['usec_per_event']:7.2f} us  {row['command']:<10} {row['calls_per_event']:>7.3f} calls/event  "
        f"{row['usec_per_call']:8.2f} us/call"
        for row in drain["redis_commands"][:10]
    ]
    lines.append("-- publish(): cProfile self time:")
    lines += [
        f"  {row['tottime_pct']:5.1f}%  {row['calls']:>9,}  {row['function']}"
        for row in profile["publish"]["cprofile_self"][:10]
    ]
    lines.append(f"(full lists in the JSON report; stats files: {', '.join(Path(f).name for f in drain['files'])})")
    return "\n".join(lines)
