"""A reply lost after the server applied a worker's round trip: nothing is written twice."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import redis

from bus import Bus
from tests.bus.helpers import spawn, write_settings
from tests.bus.test_delivery import CALLS_APP
from tests.support.polling import wait_for
from tests.support.reply_cutter import ReplyCutter
from tests.support.servers import RedisProcess

pytestmark = pytest.mark.slow


def done_at_least(r: redis.Redis, count: int) -> bool:
    return int(r.llen("test:done")) >= count


def test_a_lost_reply_to_a_fan_out_does_not_fan_out_again(tmp_path: Path, own_server: RedisProcess) -> None:
    (tmp_path / "callsapp.py").write_text(CALLS_APP)
    write_settings(tmp_path)
    calls = tmp_path / "calls.txt"
    cutter = ReplyCutter(own_server.port)
    worker = spawn(tmp_path, cutter.url, "work", "callsapp", "--driver", CALLS_FILE=str(calls))
    b = Bus(own_server.url)
    r = own_server.client()
    try:
        wait_for(lambda: r.scard("resque:workers"))
        for n in range(3):
            # The driver's round trip that pushes the event onto the app's queue loses its reply.
            cutter.arm(b"resque:queue:app_default")
            b.publish("work", {"n": n})
            wait_for(lambda: not cutter.armed, message="the fan-out's reply was cut")
            wait_for(partial(done_at_least, r, n + 1), timeout=30, message=f"event {n} handled")
        b.publish("work", {"n": 99})  # a marker: everything before it has been ridden
        wait_for(lambda: b"99" in r.lrange("test:done", 0, -1), timeout=30)
        handled = Counter(int(line) for line in calls.read_text().split())
        assert cutter.cuts == 3
        assert handled == {0: 1, 1: 1, 2: 1, 99: 1}, f"calls in order: {calls.read_text().split()}"
        assert r.llen("resque:queue:app_default") == 0
        assert worker.poll() is None, "the worker rode through the lost replies"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        cutter.close()
