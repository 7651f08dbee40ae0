"""``/metrics`` in the Prometheus text format (version 0.0.4), from one snapshot."""

from __future__ import annotations

from collections.abc import Iterable

from bus.web.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric, type, help, QueueRow attribute)
PER_QUEUE = [
    ("bus_queue_pending", "gauge", "Jobs waiting in a queue.", "pending"),
    ("bus_queue_in_flight", "gauge", "Jobs reserved by workers and not yet finished.", "in_flight"),
    ("bus_queue_retrying", "gauge", "Jobs waiting to be retried.", "retrying"),
]
# (metric, type, help, counter)
TOTALS = [
    ("bus_processed_total", "counter", "Jobs processed (Resque stat:processed).", "processed"),
    ("bus_failed_total", "counter", "Jobs failed (Resque stat:failed).", "failed"),
    ("bus_failed_entries", "gauge", "Entries in the failed list.", "failed_entries"),
    ("bus_in_flight", "gauge", "Jobs in flight across all queues.", "in_flight"),
    ("bus_delayed_jobs", "gauge", "Jobs scheduled for later (absent when too many to count).", "delayed"),
    ("bus_delayed_overdue_timestamps", "gauge", "Schedule timestamps overdue by a minute.", "delayed_overdue"),
]


def label(value: str) -> str:
    """A label value escaped as the format requires (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{labels} {_number(value)}" for labels, value in samples]


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 3))


def render(snap: Snapshot) -> str:
    lines: list[str] = []
    for name, kind, help_text, attr in PER_QUEUE:
        samples = [(f'{{queue="{label(q.name)}"}}', getattr(q, attr)) for q in snap.queues]
        lines += metric(name, kind, help_text, samples)
    ages = [
        (f'{{queue="{label(q.name)}"}}', max(0.0, snap.now - q.oldest)) for q in snap.queues if q.oldest and q.pending
    ]
    lines += metric("bus_queue_oldest_job_age_seconds", "gauge", "Age of the job at the head of a queue.", ages)
    for name, kind, help_text, counter in TOTALS:
        value = snap.counters.get(counter)
        if value is not None:
            lines += metric(name, kind, help_text, [("", value)])
    alive, dead = snap.counters["workers_alive"] or 0, snap.counters["workers_dead"] or 0
    lines += metric(
        "bus_workers", "gauge", "Registered workers by state.", [('{state="alive"}', alive), ('{state="dead"}', dead)]
    )
    return "\n".join(lines) + "\n"
