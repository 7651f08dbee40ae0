"""Switchboards built in the test process from a base of settings sections, closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus import Bus
from switchboard.app import Switchboard
from switchboard.settings import SwitchboardSettings
from tests.bus.helpers import drain

ROOT = Path(__file__).resolve().parents[2]

Make = Callable[..., Switchboard]


@contextmanager
def board_maker(redis_url: str, base: Callable[[], dict[str, Any]], sender: str) -> Iterator[Make]:
    """``make(**overrides)``: a Switchboard on ``base()`` with each overriding section merged in
    (a dict section key by key), its subscriptions stored; every one made is closed on exit."""
    boards: list[Switchboard] = []

    def make(**overrides: Any) -> Switchboard:
        sections = base()
        for key, value in overrides.items():
            sections[key] = {**sections.get(key, {}), **value} if isinstance(value, dict) else value
        settings = SwitchboardSettings.from_table(
            {"templates_dir": str(ROOT / "templates"), "senders": [sender], **sections}
        )
        bus = Bus(redis_url)
        board = Switchboard(bus, settings)
        bus.subscribe_all()
        boards.append(board)
        return board

    try:
        yield make
    finally:
        for board in boards:
            board.close()


def run(board: Switchboard) -> None:
    """Drain the board's bus: drive the sends, ride them, drive their outcome events."""
    drain(board.bus, ["bus_incoming", *board.bus.app_queues()])
