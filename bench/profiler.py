"""Profiling a worker process two ways: cProfile (exact calls) and a wall-clock sampler.

cProfile counts every call but slows Python code more than C code and I/O; the sampler
looks at the main thread every few milliseconds, so its shares are what the wall clock
sees (time blocked on Redis included), at almost no cost. A sampler thread only runs when
it gets the GIL, which a busy thread gives up every few milliseconds but a thread blocked
on a socket gives up at once: each sample is weighted by the time since the previous one.
"""

from __future__ import annotations

import cProfile
import json
import marshal
import pstats
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from bench import ROOT

SAMPLE_INTERVAL = 0.002


@contextmanager
def profiled(prefix: str, *, threads: bool = False, cpu: bool = False) -> Iterator[None]:
    """Profile the calling thread (with ``threads``, also every thread started meanwhile, in
    one merged profile; with ``cpu``, in thread CPU time rather than wall time); write
    ``PREFIX.pstats`` and ``PREFIX.samples.json``."""
    sampler = Sampler(threading.get_ident())
    timer = time.thread_time if cpu else None
    profile = cProfile.Profile(timer) if timer else cProfile.Profile()
    adopted = ThreadProfiles(timer) if threads else None
    sampler.start()
    if adopted is not None:
        threading.setprofile(adopted.adopt)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        threading.setprofile(None)
        sampler.stop()
        stats = pstats.Stats(profile)
        for path in adopted.dump(prefix) if adopted is not None else []:
            stats.add(str(path))
            path.unlink()
        stats.dump_stats(prefix + ".pstats")
        Path(prefix + ".samples.json").write_text(json.dumps(sampler.summary()))


class ThreadProfiles:
    """A cProfile per new thread: ``threading.setprofile`` hands each thread's first event to
    ``adopt``, which starts that thread's own profiler (cProfile profiles one thread)."""

    def __init__(self, timer: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []
        self._timer = timer

    def adopt(self, frame: FrameType, event: str, arg: Any) -> None:
        profile = cProfile.Profile(self._timer) if self._timer else cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()  # replaces this hook for the calling thread

    def dump(self, prefix: str) -> list[Path]:
        """Write what each thread's profiler recorded so far (their threads may still run:
        ``disable`` would only act on the calling thread), one stats file each."""
        with self._lock:
            profiles = list(self._profiles)
        paths = []
        for n, profile in enumerate(profiles):
            profile.snapshot_stats()
            if not profile.stats:  # a thread that never got past its first event (pstats refuses empty files)
                continue
            path = Path(f"{prefix}.thread-{n}.pstats")
            path.write_bytes(marshal.dumps(profile.stats))
            paths.append(path)
        return paths


class Sampler:
    """Samples one thread's Python stack: leaf function (self) and every function on it (total)."""

    def __init__(self, thread_id: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.thread_id = thread_id
        self.interval = interval
        self.own: defaultdict[str, float] = defaultdict(float)  # seconds, by innermost function
        self.total: defaultdict[str, float] = defaultdict(float)  # seconds, by every function on the stack
        self.samples = 0
        self.seconds = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._done.wait(self.interval):
            now = time.perf_counter()
            frame = sys._current_frames().get(self.thread_id)
            if frame is not None:
                self._record(frame, now - last)
            last = now

    def _record(self, frame: FrameType, weight: float) -> None:
        self.samples += 1
        self.seconds += weight
        self.own[_name(frame)] += weight
        seen: set[str] = set()
        current: FrameType | None = frame
        while current is not None:
            name = _name(current)
            if name not in seen:
                seen.add(name)
                self.total[name] += weight
            current = current.f_back

    def summary(self) -> dict[str, Any]:
        return {"samples": self.samples, "seconds": self.seconds, "own": dict(self.own), "total": dict(self.total)}


def _name(frame: FrameType) -> str:
    code = frame.f_code
    return f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_name})"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", f"{ROOT}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 2)[-1] if "/" in filename else filename


def top_cprofile(path: str, limit: int = 20, sort: str = "tottime") -> list[dict[str, Any]]:
    """The heaviest functions of a cProfile dump, with their share of the profiled time."""
    stats = pstats.Stats(path)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": calls,
                "tottime_s": round(tottime, 4),
                "cumtime_s": round(cumtime, 4),
                "tottime_pct": round(100 * tottime / total, 1),
            }
        )
    key = "tottime_s" if sort == "tottime" else "cumtime_s"
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows[:limit]


def top_samples(path: str, limit: int = 20) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    seconds = data["seconds"] or 1.0

    def rank(weights: dict[str, float]) -> list[dict[str, Any]]:
        ordered = sorted(weights.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [{"function": name, "pct": round(100 * weight / seconds, 1)} for name, weight in ordered]

    ranked = {"self": rank(data["own"]), "total": rank(data["total"])}
    return {"samples": data["samples"], "seconds": data["seconds"], **ranked}
