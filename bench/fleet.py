"""Worker processes: spawned fresh, started together on a signal, stopped cleanly.

Each process builds its system's worker, says it is ready, waits for ``go``, works until
``stop``, then writes a small JSON result (handler calls, latencies). Handler calls are
also counted in shared memory, so the parent sees progress without touching Redis.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import systems
from bench.profiler import profiled
from bench.systems import ChildSpec

_CTX = multiprocessing.get_context("spawn")


class Recorder:
    """The handler of every system: counts its calls and keeps publish-to-handler latencies."""

    def __init__(self, counter: Synchronized[int], record_latency: bool) -> None:
        self.counter = counter
        self.lock = counter.get_lock()
        self.record_latency = record_latency
        self.latencies_ns: list[int] = []

    def __call__(self, attributes: dict[str, Any]) -> None:
        if self.record_latency:
            sent = attributes.get("sent_ns")
            if sent:
                self.latencies_ns.append(time.monotonic_ns() - int(sent))
        with self.lock:
            self.counter.value += 1


def child_main(spec: ChildSpec, counter: Synchronized[int], ready: Event, go: Event, stop: Event) -> None:
    """Entry point of a worker process."""
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(name)s %(levelname)s %(message)s")
    recorder = Recorder(counter, spec.record_latency)
    service = systems.get(spec.system).service(spec, recorder)
    ready.set()
    go.wait()
    with ExitStack() as stack:
        if spec.profile:
            stack.enter_context(profiled(spec.profile, threads=spec.profile_threads, cpu=spec.profile_cpu))
        service.run(stop)
    result = {"handled": counter.value, "latencies_ns": recorder.latencies_ns}
    summary = getattr(service, "summary", None)  # a service may report more (errors, say)
    if callable(summary):
        result.update(summary())
    Path(spec.result_path).write_text(json.dumps(result))


class Fleet:
    """A set of worker processes for one measurement."""

    def __init__(self, specs: list[ChildSpec]) -> None:
        self.specs = specs
        self.counters: list[Synchronized[int]] = [_CTX.Value("q", 0) for _ in specs]
        self.ready = [_CTX.Event() for _ in specs]
        self._go = _CTX.Event()
        self._stop = _CTX.Event()
        self.processes = [
            _CTX.Process(
                target=child_main,
                args=(spec, counter, ready, self._go, self._stop),
                name=f"bench-{spec.system}-{spec.role}-{n}",
                daemon=True,
            )
            for n, (spec, counter, ready) in enumerate(zip(specs, self.counters, self.ready, strict=True))
        ]

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.kill()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def start(self, timeout: float = 60.0) -> Fleet:
        for process in self.processes:
            process.start()
        deadline = time.monotonic() + timeout
        for process, ready in zip(self.processes, self.ready, strict=True):
            while not ready.wait(0.05):
                if not process.is_alive():
                    raise RuntimeError(f"{process.name} exited during start-up (code {process.exitcode})")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s")
        return self

    def go(self) -> float:
        self._go.set()
        return time.perf_counter()

    def handled(self) -> int:
        return sum(int(c.value) for c in self.counters)

    def wait_handled(
        self, expected: int, timeout: float, progress: Callable[[int], None] | None = None, every: float = 3.0
    ) -> float:
        """Poll until ``expected`` handler calls were made; the time it happened."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + every
        while True:
            done = self.handled()
            if done >= expected:
                return time.perf_counter()
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"only {done:,} of {expected:,} handler calls after {timeout:.0f}s")
            if not all(p.is_alive() for p in self.processes):
                raise RuntimeError(f"a worker process died ({done:,} of {expected:,} handler calls)")
            if progress is not None and now >= next_report:
                progress(done)
                next_report = now + every
            time.sleep(0.002)

    def stop(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Stop every process and read their results."""
        self._stop.set()
        self._go.set()
        for process in self.processes:
            process.join(timeout)
        self.kill()
        results = []
        for spec in self.specs:
            path = Path(spec.result_path)
            results.append(json.loads(path.read_text()) if path.is_file() else {})
        return results

    def kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(5)


def watch(stop: systems.Stop, action: Callable[[], None]) -> None:
    """Call ``action`` (in a daemon thread) once ``stop`` is set."""

    def wait_then_act() -> None:
        stop.wait()
        action()

    threading.Thread(target=wait_then_act, name="bench-stop", daemon=True).start()
