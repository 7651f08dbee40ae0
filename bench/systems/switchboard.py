"""The switchboard as a benchmark system: what ``switchboard run`` runs, in one process.

``Switchboard(bus, settings)``, its subscriptions stored, one worker on its queues and
``bus_incoming`` with the switchboard's own concurrency (sends in flight on its event loop). Progress is read
from Redis (the bus's own ``stat:processed``), so nothing is added to the worker. The
ChildSpec's ``config`` carries the emulators' endpoints.
"""

from __future__ import annotations

import dataclasses
import json

from bench.notifications import board_settings
from bench.systems.base import ChildSpec, Stop, watch
from bench.workload import Handler
from bus import Bus, BusSettings
from bus.runtime.collector import tune_collector
from switchboard.app import Switchboard


class SwitchboardService:
    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        settings = board_settings(json.loads(spec.config)["endpoints"])
        if spec.concurrency:
            settings = dataclasses.replace(settings, concurrency=spec.concurrency)
        self.bus = Bus(settings=BusSettings(redis_url=spec.url))
        self.board = Switchboard(self.bus, settings)
        self.bus.subscribe_all()
        self.worker = self.board.worker(install_signals=False, batch_size=spec.batch_size)

    def run(self, stop: Stop) -> None:
        watch(stop, self.worker.request_stop)
        tune_collector()  # as `bus work` and `switchboard run` do
        try:
            self.worker.run()
        finally:
            self.board.close()


class SwitchboardSystem:
    """Used through worker processes only: events are published by the scenario itself."""

    name = "switchboard"
    roles = ("email", "sms", "push", "mixed")

    def prepare(self, url: str) -> None:
        """Nothing: the worker stores its subscriptions when it starts, as ``switchboard run`` does."""

    def service(self, spec: ChildSpec, handler: Handler) -> SwitchboardService:
        return SwitchboardService(spec, handler)
