"""The switchboard's families on ``/metrics``, reported after the bus dashboard's own."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from bus.web.metrics import add_collector, family, single
from switchboard.channels import Channel
from switchboard.standing import provider_standings
from switchboard.statuses import DeliveryStats
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
        stats = DeliveryStats(board.deliveries.redis, board.deliveries.keys)
        finals = [
            ([channel, status], n)
            for channel, by_status in sorted(stats.finals().items())
            for status, n in sorted(by_status.items())
        ]
        yield family(
            "switchboard_delivery_final_total",
            "counter",
            "Deliveries by the status the provider's webhooks gave them (delivered, bounced, dropped, "
            "complained, undelivered).",
            ["channel", "status"],
            finals,
        )
        delays = HistogramMetricFamily(
            "switchboard_delivery_delay_seconds",
            "Seconds from the provider accepting a message to its delivery, by the provider's word.",
            labels=["channel"],
        )
        for channel, (buckets, total, _count) in stats.delays().items():
            delays.add_metric([channel], [(bound, float(n)) for bound, n in buckets], total)
        yield delays
        suppressed = [([c.value], board.suppressed_count(c.value)) for c in Channel]
        yield family(
            "switchboard_suppressions", "gauge", "Recipients not to contact, by channel.", ["channel"], suppressed
        )
        yield single("switchboard_outbox_messages", "gauge", "Messages in the dev-mode outbox.", board.outbox_count())
        problems = len(board.templates.problems)
        yield single("switchboard_template_problems", "gauge", "Problems found in the templates folder.", problems)
        providers = [([c.value, p], 1) for c, p in board.providers_in_use().items()]
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
        standings = provider_standings(board.settings, board.deliveries.redis, board.deliveries.keys)
        circuits = [
            ([s.provider, state], int(s.circuit.state == state))
            for s in standings
            for state in ("closed", "open", "half_open")
        ]
        yield family(
            "switchboard_provider_circuit",
            "gauge",
            "Each provider's circuit: 1 for the state it is in (closed, open, half_open), shared by every worker.",
            ["provider", "state"],
            circuits,
        )
        yield family(
            "switchboard_rate_limit_waits_total",
            "counter",
            "Sends that waited because their provider was at its rate limit, by provider.",
            ["provider"],
            [([s.provider], s.waits) for s in standings],
        )


def extend_metrics(app: Starlette) -> None:
    """Report the switchboard on the dashboard's ``/metrics`` too."""
    add_collector(app, lambda request: SwitchboardCollector(board_of(request)))
