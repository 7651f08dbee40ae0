"""The providers ``switchboard run`` workers record for the dashboard: written, refreshed, expiring, read strictly."""

from __future__ import annotations

import threading

import redis

from bus import Bus
from switchboard.channels import Channel
from switchboard.keys import SwitchboardKeys
from switchboard.live_channels import TTL_SECONDS, LiveChannels
from tests.support.polling import wait_for

KEY = "resque:switchboard:live_channels"
PROVIDERS = {Channel.EMAIL: "sendgrid", Channel.SMS: "vonage", Channel.PUSH: "outbox"}


def live_channels(bus: Bus, *, ttl: int = TTL_SECONDS) -> LiveChannels:
    return LiveChannels(bus.redis, SwitchboardKeys(bus.keys), ttl=ttl)


def test_recorded_providers_read_back_and_expire_without_workers(bus: Bus, r: redis.Redis) -> None:
    assert live_channels(bus).recorded() == {}  # no worker: the pages fall back to their own settings
    live_channels(bus).record(PROVIDERS)
    assert live_channels(bus).recorded() == PROVIDERS
    assert 0 < r.ttl(KEY) <= TTL_SECONDS
    live_channels(bus, ttl=1).record(PROVIDERS)
    wait_for(lambda: not r.exists(KEY), timeout=5)
    assert live_channels(bus).recorded() == {}


def test_fields_any_client_wrote_count_only_if_they_name_a_provider_of_that_channel(bus: Bus, r: redis.Redis) -> None:
    r.hset(KEY, mapping={"email": "twilio", "sms": "<script>", "fax": "outbox", "push": "fcm", b"\xff": b"\xfe"})
    assert live_channels(bus).recorded() == {Channel.PUSH: "fcm"}


def test_running_workers_refresh_the_record_until_they_stop(bus: Bus, r: redis.Redis) -> None:
    stop = threading.Event()
    recorder = live_channels(bus)
    thread = threading.Thread(target=recorder.keep_recording, args=(PROVIDERS, stop), kwargs={"every": 0.02})
    thread.start()
    try:
        wait_for(lambda: r.exists(KEY))
        r.delete(KEY)
        wait_for(lambda: r.exists(KEY))  # written again, not only at start
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
