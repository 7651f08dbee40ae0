"""The switchboard's lines on ``/metrics``, appended to the bus dashboard's own.

The bus dashboard has no hook for extra metrics, so :func:`extend_metrics` wraps its
``metrics`` route: the bus lines first, unchanged, then these.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bus.web.metrics import CONTENT_TYPE, exposition, family, single
from switchboard.channels import Channel
from switchboard.web.board import Board, board_of


class SwitchboardCollector(Collector):
    """Send outcomes by channel and status, suppressions, outbox, template problems, providers."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        board = self.board
        counts = board.deliveries.outcome_totals()
        outcomes = [
            ([channel, status], n)
            for channel, by_status in sorted(counts.items())
            for status, n in sorted(by_status.items())
        ]
        yield family(
            "switchboard_outcomes_total",
            "counter",
            "Send outcomes by channel and status (sent, failed, suppressed, stalled, retrying: each retry counts).",
            ["channel", "status"],
            outcomes,
        )
        suppressed = [([c.value], board.suppressed_count(c.value)) for c in Channel]
        yield family(
            "switchboard_suppressions", "gauge", "Recipients not to contact, by channel.", ["channel"], suppressed
        )
        yield single("switchboard_outbox_messages", "gauge", "Messages in the dev-mode outbox.", board.outbox_count())
        problems = len(board.templates.problems)
        yield single("switchboard_template_problems", "gauge", "Problems found in the templates folder.", problems)
        providers = [([c.value, p], 1) for c, p in board.settings.live_channels().items()]
        yield family(
            "switchboard_channel_provider",
            "gauge",
            "Each channel's provider (outbox: dev mode).",
            ["channel", "provider"],
            providers,
        )
        stopped = [([s.scope], 1) for s in board.channel_states.all()]
        yield family(
            "switchboard_channel_stopped",
            "gauge",
            "Channels (or email:sender:<address>) stopped because the provider refused our configuration.",
            ["scope"],
            stopped,
        )


def render(board: Board) -> bytes:
    return exposition(SwitchboardCollector(board))


def extend_metrics(routes: list[BaseRoute]) -> None:
    """Replace the bus ``metrics`` route, in place, with one that also reports the switchboard."""
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.name == "metrics":
            routes[index] = Route(route.path, _with_board(route.endpoint), name="metrics")
            return
    raise LookupError("the bus dashboard has no route named 'metrics' to extend")


def _with_board(bus_endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def metrics(request: Request) -> Response:
        if inspect.iscoroutinefunction(bus_endpoint):
            base: Response = await bus_endpoint(request)
        else:
            base = await run_in_threadpool(bus_endpoint, request)
        if base.status_code != 200:
            return base
        extra = await run_in_threadpool(render, board_of(request))
        return Response(bytes(base.body) + extra, media_type=CONTENT_TYPE)

    return metrics
