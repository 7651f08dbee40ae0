"""A first look at the bus on the embedded server: publish, drive, ride, show the queues.

``./run switchboard`` runs this until the switchboard app takes its place.
"""

from __future__ import annotations

import logging

from bus import Bus, Retry

bus = Bus()
profile = bus.dispatch("profile")


@profile.subscribe("rating_created")
def recalculate(attributes: dict[str, object]) -> None:
    print(f"profile: rating {attributes['id']} for rabbit {attributes['rabbit_id']} -> recalculating average")


@profile.subscribe("user_paid", queue="critical", retry=Retry(max_retries=0))
def paid(attributes: dict[str, object]) -> None:
    print(f"profile: user {attributes['user_id']} paid {attributes['amount']}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    print(f"embedded server: {bus.redis_url}")
    bus.subscribe_all()
    samples: list[tuple[str, dict[str, object]]] = [
        ("rating_created", {"id": 7, "rabbit_id": 42, "value": 5}),
        ("user_paid", {"user_id": 42, "amount": 12.5}),
        ("nobody_listens", {"x": 1}),
    ]
    for event_type, attributes in samples:
        print(f"published {event_type}: {bus.publish(event_type, attributes)}")
    worker = bus.worker([*bus.app_queues(), "bus_incoming"], burst=True)
    worker.run()
    print(f"worker processed {worker.processed} job(s); try: .venv/bin/bus queues, .venv/bin/bus apps")


if __name__ == "__main__":
    main()
