"""Worker processes: spawned fresh, started together on a signal, stopped cleanly.

Each process builds its system's worker, says it is ready, waits for ``go``, works until
``stop``, then writes a small JSON result (handler calls, latencies). Handler calls are
also counted in shared memory, so the parent sees progress without touching Redis.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
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
from bench.systems.base import ChildSpec
from tests.support.polling import wait_for

_CTX = multiprocessing.get_context("spawn")
PROGRESS_EVERY = 3.0


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
        """Start every process; return once each has built its worker and waits for :meth:`go`."""
        for process in self.processes:
            process.start()

        def all_ready() -> bool:
            self.check_alive("during start-up")
            return all(ready.is_set() for ready in self.ready)

        def not_ready() -> str:
            late = [p.name for p, ready in zip(self.processes, self.ready, strict=True) if not ready.is_set()]
            return f"not ready: {', '.join(late)}"

        wait_for(all_ready, timeout=timeout, interval=0.01, message=not_ready)
        return self

    def go(self) -> float:
        self._go.set()
        return time.perf_counter()

    def handled(self) -> int:
        return sum(int(c.value) for c in self.counters)

    def check_alive(self, when: str) -> None:
        """Raise if a worker process has exited: what it was to do will never be done."""
        for process in self.processes:
            if not process.is_alive():
                raise RuntimeError(f"{process.name} exited (code {process.exitcode}) {when}")

    def wait_handled(self, expected: int, timeout: float, progress: Callable[[int], None] | None = None) -> float:
        """Poll until ``expected`` handler calls were made; the time it happened."""
        return self.wait_done(self.handled, expected, timeout, progress=progress)

    def wait_done(
        self,
        done: Callable[[], int],
        expected: int,
        timeout: float,
        *,
        progress: Callable[[int], None] | None = None,
        interval: float = 0.002,
    ) -> float:
        """Poll ``done()`` until it reaches ``expected`` (calling ``progress`` every
        PROGRESS_EVERY seconds meanwhile); the time it did."""
        next_report = time.monotonic() + PROGRESS_EVERY

        def reached() -> bool:
            nonlocal next_report
            count = done()
            if count >= expected:
                return True
            self.check_alive(f"with {count:,} of {expected:,} done")
            if progress is not None and time.monotonic() >= next_report:
                progress(count)
                next_report = time.monotonic() + PROGRESS_EVERY
            return False

        wait_for(reached, timeout=timeout, interval=interval, message=lambda: f"{done():,} of {expected:,} done")
        return time.perf_counter()

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
