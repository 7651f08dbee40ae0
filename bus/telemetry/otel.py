"""OpenTelemetry for the bus: a span for each publish, drive and ride, the context carried in events.

Optional (``pip install switchboard-bus[otel]``). Without ``opentelemetry-api`` every function
here does nothing; with it installed but no SDK configured (the API's default provider, which
records nothing) the bus makes no spans at all, so neither costs a worker anything. Whether an
SDK records is asked when a worker or publisher is built: configure the SDK before that.

The W3C trace context travels in the event as ``bus_traceparent`` / ``bus_tracestate``,
attributes Ruby and Node apps pass through untouched (and may set themselves). Spans follow
the messaging semantic conventions: ``send bus_incoming`` (PRODUCER) for a publish,
``process <queue>`` (CONSUMER) for a drive and for each ride, children of the publish and
linked to it, so a handler's own spans and publishes nest under its ride and a chain of
events is one trace. A retry is a new ride span in the same trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from bus.pipeline.rider import Middleware, Ride, scoped_middleware

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the extra is not installed: every helper below is a no-op
    trace = None  # type: ignore[assignment]

TRACEPARENT = "bus_traceparent"
TRACESTATE = "bus_tracestate"
SYSTEM = "resque_bus"
"""``messaging.system``: the protocol (Resque Bus), shared with Ruby and Node apps on the bus."""
INCOMING = "bus_incoming"
_TRACEPARENT_SHAPE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

Span = Any
"""An OpenTelemetry span (``Any``: the API may not be installed)."""


def installed() -> bool:
    """True if ``opentelemetry-api`` can be imported."""
    return trace is not None


def recording() -> bool:
    """True if an OpenTelemetry SDK is configured: the global tracer provider is a real one."""
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def trace_id_of(attributes: Mapping[str, Any]) -> str | None:
    """The trace id an event's ``bus_traceparent`` names (32 hex digits), if it holds a valid one."""
    value = attributes.get(TRACEPARENT)
    if not isinstance(value, str) or not _TRACEPARENT_SHAPE.match(value):
        return None
    trace_id = value.split("-")[1]
    return None if trace_id == "0" * 32 else trace_id


def current_ids() -> tuple[str, str] | None:
    """The (trace id, span id) of the span running now, in hex, for log lines; None outside one."""
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class Tracer:
    """Spans for one bus: from ``provider``, else the global provider if an SDK set one.

    Build it when the app is wired, after the SDK is configured.
    """

    def __init__(self, provider: Any = None) -> None:
        self.enabled = trace is not None and (provider is not None or recording())
        self._tracer = None
        self._propagator = None
        if self.enabled:
            self._tracer = (provider or trace.get_tracer_provider()).get_tracer("switchboard-bus")
            self._propagator = TraceContextTextMapPropagator()

    # --- publishing ---------------------------------------------------------------
    def publish(self, event: MutableMapping[str, Any], destination: str = INCOMING) -> Span | None:
        """Start a PRODUCER span for ``event`` and write its context into the event.

        Its parent is the span running now (a handler's ride), else the context the event
        already carries (a delayed event coming due, a Ruby or Node publisher's), else none.
        End it with :meth:`end` once the event is pushed.
        """
        if self._tracer is None:
            return None
        parent = None if trace.get_current_span().get_span_context().is_valid else self._extract(event)
        span = self._tracer.start_span(
            f"send {destination}",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes=self._messaging(event, destination, "send"),
        )
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))  # type: ignore[union-attr]
        event[TRACEPARENT] = carrier["traceparent"]
        if carrier.get("tracestate"):
            event[TRACESTATE] = carrier["tracestate"]
        else:
            event.pop(TRACESTATE, None)
        return span

    @staticmethod
    def end(span: Span | None, error: BaseException | None = None) -> None:
        if span is None:
            return
        if error is not None:
            span.record_exception(error)
            span.set_status(trace.StatusCode.ERROR, type(error).__name__)
        span.end()

    # --- consuming ---------------------------------------------------------------
    def consume(self, attributes: Mapping[str, Any], queue: str, **extra: Any) -> Span | None:
        """Start a CONSUMER span (``process <queue>``): a child of the publish, linked to it."""
        if self._tracer is None:
            return None
        parent = self._extract(attributes)
        links = []
        if parent is not None:
            published = trace.get_current_span(parent).get_span_context()
            if published.is_valid:
                links.append(trace.Link(published))
        span_attributes = self._messaging(attributes, queue, "process")
        span_attributes.update({f"bus.{k}": v for k, v in extra.items() if v is not None})
        return self._tracer.start_span(
            f"process {queue}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=span_attributes, links=links
        )

    @contextmanager
    def running(self, span: Span | None) -> Iterator[None]:
        """Make ``span`` the current one for the block (a handler's spans and publishes nest under it)."""
        if span is None:
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            otel_context.detach(token)

    @contextmanager
    def client(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Callable[[str, Any], None]]:
        """A CLIENT span around a call to another service (a provider); yields ``set(key, value)``."""
        if self._tracer is None:
            yield lambda key, value: None
            return
        with self._tracer.start_as_current_span(
            name, kind=trace.SpanKind.CLIENT, attributes=dict(attributes), record_exception=True
        ) as span:
            yield span.set_attribute

    def ride_middleware(self) -> Middleware:
        """A worker middleware running each ride in its CONSUMER span."""
        return scoped_middleware(self._consuming)[0]

    def async_ride_middleware(self) -> Middleware:
        """:meth:`ride_middleware` for async rides."""
        return scoped_middleware(self._consuming)[1]

    @contextmanager
    def _consuming(self, ride: Ride) -> Iterator[None]:
        span = self.consume(
            ride.attributes, ride.queue, app=ride.app_key, subscription=ride.sub_key, attempt=ride.attempt
        )
        try:
            with self.running(span):
                yield
        except BaseException as exc:
            self.end(span, exc)
            raise
        self.end(span)

    # --- helpers ---------------------------------------------------------------
    def _extract(self, attributes: Mapping[str, Any]) -> Any:
        traceparent = attributes.get(TRACEPARENT)
        if not isinstance(traceparent, str) or not _TRACEPARENT_SHAPE.match(traceparent):
            return None
        carrier = {"traceparent": traceparent}
        tracestate = attributes.get(TRACESTATE)
        if isinstance(tracestate, str) and len(tracestate) <= 512:
            carrier["tracestate"] = tracestate
        return self._propagator.extract(carrier)  # type: ignore[union-attr]

    @staticmethod
    def _messaging(attributes: Mapping[str, Any], destination: str, operation: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": destination,
            "messaging.operation.name": operation,
            "messaging.operation.type": operation,
        }
        bus_id = attributes.get("bus_id")
        if isinstance(bus_id, str):
            found["messaging.message.id"] = bus_id
        event_type = attributes.get("bus_event_type")
        if isinstance(event_type, str):
            found["bus.event_type"] = event_type
        return found
