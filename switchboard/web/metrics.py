"""The switchboard's lines on ``/metrics``, appended to the bus dashboard's own.

The bus dashboard has no hook for extra metrics, so :func:`extend_metrics` wraps its
``metrics`` route: the bus lines first, unchanged, then these.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bus.web.metrics import CONTENT_TYPE, label, metric
from switchboard.channels import Channel
from switchboard.standing import provider_standings
from switchboard.web.board import Board, board_of


def render(board: Board) -> str:
    """Send outcomes by channel and status, suppressions, outbox, template problems, providers,
    their circuits and the sends that waited for their rate."""
    counts = board.deliveries.outcome_totals()
    outcomes = [
        (f'{{channel="{label(channel)}",status="{label(status)}"}}', n)
        for channel, by_status in sorted(counts.items())
        for status, n in sorted(by_status.items())
    ]
    suppressed = [(f'{{channel="{c.value}"}}', board.suppressed_count(c.value)) for c in Channel]
    providers = [
        (f'{{channel="{c.value}",provider="{label(p)}"}}', 1) for c, p in board.settings.live_channels().items()
    ]
    stopped = [(f'{{scope="{label(s.scope)}"}}', 1) for s in board.channel_states.all()]
    standings = provider_standings(board.settings, board.deliveries.redis, board.deliveries.keys)
    circuits = [
        (f'{{provider="{label(s.provider)}",state="{state}"}}', int(s.circuit.state == state))
        for s in standings
        for state in ("closed", "open", "half_open")
    ]
    waits = [(f'{{provider="{label(s.provider)}"}}', s.waits) for s in standings]
    outbox = [("", board.outbox_count())]
    problems = [("", len(board.templates.problems))]
    lines = [
        *metric(
            "switchboard_outcomes_total",
            "counter",
            "Send outcomes by channel and status (sent, failed, suppressed, stalled, retrying: each retry counts).",
            outcomes,
        ),
        *metric("switchboard_suppressions", "gauge", "Recipients not to contact, by channel.", suppressed),
        *metric("switchboard_outbox_messages", "gauge", "Messages in the dev-mode outbox.", outbox),
        *metric("switchboard_template_problems", "gauge", "Problems found in the templates folder.", problems),
        *metric("switchboard_channel_provider", "gauge", "Each channel's provider (outbox: dev mode).", providers),
        *metric(
            "switchboard_channel_stopped",
            "gauge",
            "Channels (or email:sender:<address>) stopped because the provider refused our configuration.",
            stopped,
        ),
        *metric(
            "switchboard_provider_circuit",
            "gauge",
            "Each provider's circuit: 1 for the state it is in (closed, open, half_open), shared by every worker.",
            circuits,
        ),
        *metric(
            "switchboard_rate_limit_waits_total",
            "counter",
            "Sends that waited because their provider was at its rate limit, by provider.",
            waits,
        ),
    ]
    return "\n".join(lines) + "\n"


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
        return Response(bytes(base.body) + extra.encode(), media_type=CONTENT_TYPE)

    return metrics
