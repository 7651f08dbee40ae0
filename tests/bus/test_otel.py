"""OpenTelemetry: publish spans, the W3C context carried in events, and a bus without the extra."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bus import Bus, Retry
from bus.stores.traces import read_trace
from bus.telemetry.logs import JsonFormatter
from tests.bus.helpers import drain, queue_jobs


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_a_publish_is_a_producer_span_whose_context_the_event_carries(
    redis_url: str, r: redis.Redis, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    bus = Bus(redis_url, tracer_provider=provider)
    with provider.get_tracer("web").start_as_current_span("POST /signup") as request:
        bus_id = bus.publish("signup", {"user_id": 7})
    (publish,) = named(exporter, "send bus_incoming")
    (event,) = queue_jobs(r, "bus_incoming")
    assert publish.kind is SpanKind.PRODUCER
    assert publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    assert publish.context.trace_id == request.get_span_context().trace_id
    version, trace_id, span_id, flags = event["bus_traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{publish.context.trace_id:032x}", f"{publish.context.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    assert dict(publish.attributes or {}) == {
        "messaging.system": "resque_bus",
        "messaging.destination.name": "bus_incoming",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.message.id": bus_id,
        "bus.event_type": "signup",
    }


def test_a_delayed_event_coming_due_continues_the_trace_it_was_published_in(
    redis_url: str, r: redis.Redis, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    bus = Bus(redis_url, tracer_provider=provider)
    # What a Ruby or Node publisher sends: an event already carrying a context, no span running here.
    upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    bus.publish("reminder", {"bus_traceparent": upstream, "bus_tracestate": "vendor=1"})
    (publish,) = named(exporter, "send bus_incoming")
    (event,) = queue_jobs(r, "bus_incoming")
    assert f"{publish.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert publish.parent is not None and f"{publish.parent.span_id:016x}" == "b7ad6b7169203331"
    assert event["bus_traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert event["bus_tracestate"] == "vendor=1"


@pytest.mark.parametrize("bad", ["", "junk", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "x" * 10_000, 7])
def test_a_malformed_traceparent_starts_a_new_trace(
    redis_url: str, r: redis.Redis, spans: tuple[TracerProvider, InMemorySpanExporter], bad: object
) -> None:
    provider, exporter = spans
    Bus(redis_url, tracer_provider=provider).publish("x", {"bus_traceparent": bad})
    (publish,) = named(exporter, "send bus_incoming")
    assert publish.parent is None
    (event,) = queue_jobs(r, "bus_incoming")
    assert event["bus_traceparent"].split("-")[1] == f"{publish.context.trace_id:032x}"


def test_without_an_sdk_events_carry_no_context(redis_url: str, r: redis.Redis) -> None:
    Bus(redis_url).publish("x", {"n": 1})
    (event,) = queue_jobs(r, "bus_incoming")
    assert "bus_traceparent" not in event


def test_a_bus_without_opentelemetry_installed_publishes_and_rides(redis_url: str) -> None:
    script = f"""
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed: importing it fails
from bus import Bus, Retry
from bus.stores.traces import read_trace
from bus.telemetry.logs import JsonFormatter
from bus.telemetry import otel
assert not otel.installed()
bus = Bus({redis_url!r})
seen = []
bus.dispatch("app").add("ping", seen.append)
bus.subscribe_all()
bus.publish("ping", {{"n": 1}})
bus.worker(burst=True, install_signals=False, queues=["bus_incoming", "app_default"]).run()
assert [a["n"] for a in seen] == [1] and "bus_traceparent" not in seen[0], seen
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_json_log_lines_carry_the_bus_id_and_the_trace_of_the_ride(
    redis_url: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.otel.handler")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    bus = Bus(redis_url, tracer_provider=provider)

    def handler_fn(attributes: dict[str, object]) -> None:
        log.info("handling %s", attributes["n"])

    bus.dispatch("app").add("ping", handler_fn)
    bus.subscribe_all()
    bus_id = bus.publish("ping", {"n": 7})
    try:
        bus.worker(["bus_incoming", "app_default"], burst=True, install_signals=False).run()
    finally:
        log.removeHandler(handler)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    (ride,) = named(exporter, "process app_default")
    assert line["message"] == "handling 7" and line["level"] == "INFO" and line["logger"] == "tests.otel.handler"
    assert line["bus_id"] == bus_id
    assert (line["trace_id"], line["span_id"]) == (f"{ride.context.trace_id:032x}", f"{ride.context.span_id:016x}")
    assert line["time"].endswith("+00:00")


def test_the_cli_logs_json_when_asked(tmp_path: Path, redis_url: str) -> None:
    settings = tmp_path / "s.toml"
    settings.write_text(f'[bus]\nredis_url = "{redis_url}"\nlog_format = "json"\n')
    done = subprocess.run(
        [sys.executable, "-m", "bus.cli", "-v", "scheduler", "--burst", "--settings", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "bus.scheduler" and "started" in line["message"] for line in lines), done.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "bus.cli", "--log-format", "xml", "queues"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_publish_drive_rides_and_a_handlers_publish_are_one_trace(
    redis_url: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    bus = Bus(redis_url, tracer_provider=provider)
    inner = provider.get_tracer("app")

    def thank(attributes: dict[str, object]) -> None:
        with inner.start_as_current_span("render thank-you"):
            bus.publish("thanked", {"order": attributes["order"]})

    bus.dispatch("mailer").add("order_placed", thank)
    bus.dispatch("billing").add("order_placed", lambda a: None)
    bus.dispatch("stock").add("order_placed", lambda a: None)
    bus.dispatch("audit").add("thanked", lambda a: None)
    bus.subscribe_all()
    with inner.start_as_current_span("POST /orders") as request:
        bus.publish("order_placed", {"order": 12})
    queues = ["bus_incoming", "mailer_default", "billing_default", "stock_default", "audit_default"]
    bus.worker(queues, burst=True, install_signals=False).run()

    finished = exporter.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {request.get_span_context().trace_id}
    by_name = {name: [s for s in finished if s.name == name] for name in {s.name for s in finished}}
    first_publish, second_publish = sorted(by_name["send bus_incoming"], key=lambda s: s.start_time or 0)
    assert first_publish.parent is not None and first_publish.parent.span_id == request.get_span_context().span_id
    drives = by_name["process bus_incoming"]
    assert len(drives) == 2
    rides = [s for name, group in by_name.items() if name.endswith("_default") for s in group]
    assert sorted(s.name for s in rides) == [
        "process audit_default",
        "process billing_default",
        "process mailer_default",
        "process stock_default",
    ]
    publishes = {first_publish.context.span_id, second_publish.context.span_id}
    assert {d.parent.span_id for d in drives if d.parent is not None} == publishes
    for consumer in [*drives, *rides]:
        assert consumer.kind is SpanKind.CONSUMER
        published = first_publish if consumer.name != "process audit_default" else second_publish
        if consumer in drives and consumer.parent is not None:
            published = first_publish if consumer.parent.span_id == first_publish.context.span_id else second_publish
        assert consumer.parent is not None and consumer.parent.span_id == published.context.span_id
        assert [link.context.span_id for link in consumer.links] == [published.context.span_id]
    (mailer_ride,) = by_name["process mailer_default"]
    (render,) = by_name["render thank-you"]
    assert render.parent is not None and render.parent.span_id == mailer_ride.context.span_id
    assert second_publish.parent is not None and second_publish.parent.span_id == render.context.span_id
    attributes = dict(mailer_ride.attributes or {})
    assert attributes["messaging.destination.name"] == "mailer_default"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["bus.app"] == "mailer" and attributes["bus.attempt"] == 0


def test_a_retry_is_a_new_ride_span_in_the_same_trace_and_a_failure_is_an_error(
    redis_url: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    bus = Bus(redis_url, tracer_provider=provider)
    calls: list[int] = []

    def flaky(attributes: dict[str, object]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("crm unreachable")

    bus.dispatch("crm").add("signup", flaky, retry=Retry(max_retries=2, delays=(0.01,)))
    bus.subscribe_all()
    bus.publish("signup", {})
    drain(bus, ["bus_incoming", "crm_default"])
    first, second = sorted(named(exporter, "process crm_default"), key=lambda s: s.start_time or 0)
    assert first.context.trace_id == second.context.trace_id
    assert first.status.status_code is StatusCode.ERROR and second.status.status_code is StatusCode.UNSET
    assert [e.name for e in first.events] == ["exception"]
    assert (dict(first.attributes or {})["bus.attempt"], dict(second.attributes or {})["bus.attempt"]) == (0, 1)


def test_the_readme_set_up_opentelemetry_instrument_traces_a_publish(redis_url: str) -> None:
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    bus_command = Path(sys.executable).parent / "bus"
    environment = {
        **os.environ,
        "OTEL_SERVICE_NAME": "web",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    done = subprocess.run(
        [str(instrument), str(bus_command), "publish", "signup", "{}", "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    bus_id = done.stdout.splitlines()[0]
    assert '"name": "send bus_incoming"' in done.stdout and f'"messaging.message.id": "{bus_id}"' in done.stdout


def test_bus_trace_names_the_opentelemetry_trace(bus: Bus, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = spans
    traced_bus = Bus(settings=bus.settings, tracer_provider=provider)
    traced_bus.dispatch("app").add("ping", lambda a: None)
    traced_bus.subscribe_all()
    bus_id = traced_bus.publish("ping", {})
    drain(traced_bus, ["bus_incoming", "app_default"])
    (published,) = [s for s in read_trace(traced_bus.redis, traced_bus.keys, bus_id) if s.data["step"] == "published"]
    (span,) = named(spans[1], "send bus_incoming")
    assert published.data["trace_id"] == f"{span.context.trace_id:032x}"
    assert f"(OpenTelemetry trace {span.context.trace_id:032x})" in published.describe()
