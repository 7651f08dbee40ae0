"""OpenTelemetry through the switchboard: the web request, the publish, drive, ride and provider call, one trace."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bus import Bus
from switchboard.app import Switchboard
from switchboard.client import send_email
from switchboard.settings import SwitchboardSettings
from tests.bus.helpers import drain
from tests.support.emulators import SendGridEmulator

ROOT = Path(__file__).resolve().parents[2]


def test_a_send_is_one_trace_down_to_the_provider_call(redis_url: str, sendgrid_emulator: SendGridEmulator) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bus = Bus(redis_url, tracer_provider=provider)
    settings = SwitchboardSettings.from_table(
        {
            "templates_dir": str(ROOT / "templates"),
            "senders": ["Acme <no-reply@acme.example>"],
            "sendgrid": {"api_key": sendgrid_emulator.api_key, "base_url": sendgrid_emulator.url, "timeout": 2},
        }
    )
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    try:
        with provider.get_tracer("web").start_as_current_span("POST /signup") as request:
            send_email(bus=bus, to="ada@example.com", subject="Hi", text="Hello")
        drain(bus, ["bus_incoming", *board.queues])
    finally:
        board.close()
        provider.shutdown()
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {request.get_span_context().trace_id}
    (call,) = [s for s in spans if s.name == "sendgrid send"]
    (ride,) = [s for s in spans if s.name == "process switchboard_email"]
    assert call.kind is SpanKind.CLIENT and call.parent is not None and call.parent.span_id == ride.context.span_id
    assert dict(call.attributes or {}) == {
        "switchboard.provider": "sendgrid",
        "switchboard.channel": "email",
        "switchboard.retry": 0,
        "switchboard.outcome": "accepted",
    }
    assert "ada@example.com" not in json.dumps([dict(s.attributes or {}) for s in spans])
    # The outcome event the switchboard published nests under the ride too.
    outcome = [
        s for s in spans if s.name == "send bus_incoming" and s.parent and s.parent.span_id == ride.context.span_id
    ]
    assert len(outcome) == 1
