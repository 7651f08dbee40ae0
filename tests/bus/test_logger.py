"""The logger app: every event into the event log, redacted, shipped to files and Elasticsearch."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.logger import LoggerApp, LoggerSettings, load_logger_settings
from bus.logger.settings import ElasticsearchSinkSettings, FileSinkSettings
from bus.logger.shipper import Shipper
from bus.logger.sinks import ElasticsearchSink
from bus.logger.stream import EventLog
from tests.bus.helpers import FAST
from tests.support.emulators import ElasticsearchEmulator


@pytest.fixture
def es() -> Iterator[ElasticsearchEmulator]:
    with ElasticsearchEmulator() as emulator:
        yield emulator


def settings_for(tmp_path: Path, es: ElasticsearchEmulator | None = None, **changes: object) -> LoggerSettings:
    sinks = ("redis", "file", "elasticsearch") if es else ("redis", "file")
    base = LoggerSettings(
        sinks=sinks,
        file=FileSinkSettings(path=tmp_path / "log" / "events.jsonl"),
        elasticsearch=ElasticsearchSinkSettings(url=es.url if es else "http://127.0.0.1:9", batch_size=50),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def run_logger(bus: Bus, settings: LoggerSettings) -> LoggerApp:
    app = LoggerApp(bus, settings)
    bus.subscribe_all()
    worker = bus.worker(["bus_incoming", *app.dispatch.queues], burst=True, install_signals=False, settings=FAST)
    worker.run()
    app.drain_shippers()
    return app


def test_the_logger_sees_every_apps_events_but_the_excluded(redis_url: str, tmp_path: Path) -> None:
    web, billing = Bus(redis_url, hostname="web-1"), Bus(redis_url, hostname="billing-1")
    web.publish("user_created", {"id": 1})
    billing.publish("invoice_paid", {"id": 2})
    web.publish("heartbeat_minutes", {"minute": 1})  # excluded by default
    logger_bus = Bus(redis_url)
    app = run_logger(logger_bus, settings_for(tmp_path))
    logged = app.event_log.recent(limit=10)
    assert [(e.event_type, e.event["bus_app_hostname"]) for e in logged] == [
        ("user_created", "web-1"),
        ("invoice_paid", "billing-1"),
    ]
    assert "bus_rider_app_key" not in logged[0].event  # logged as published, not as delivered
    assert [e.event_type for e in app.event_log.recent(event_type="invoice_paid")] == ["invoice_paid"]
    lines = (tmp_path / "log" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["bus_event_type"] for line in lines] == ["user_created", "invoice_paid"]


def test_redaction_holds_on_every_sink(
    redis_url: str, r: redis.Redis, tmp_path: Path, es: ElasticsearchEmulator
) -> None:
    b = Bus(redis_url)
    b.publish(
        "login", {"user": "ann", "password": "hunter2", "profile": {"API_KEY": "k-123", "tags": [{"token": "t-9"}]}}
    )
    run_logger(b, settings_for(tmp_path, es))
    stored = [json.dumps(e.event) for e in EventLog(r, b.keys, max_length=1).recent()]
    stored.append((tmp_path / "log" / "events.jsonl").read_text())
    stored.append(json.dumps(es.documents))
    for text in stored:
        assert "hunter2" not in text and "k-123" not in text and "t-9" not in text
        assert "[redacted]" in text and "ann" in text


def test_bulk_sink_survives_errors_without_losing_or_duplicating(
    redis_url: str, r: redis.Redis, tmp_path: Path, es: ElasticsearchEmulator
) -> None:
    b = Bus(redis_url)
    ids = b.publish_many([("order_placed", {"n": n}) for n in range(30)])
    es.script(es.error(429, retry_after=0.1), es.error(503))  # the first two requests fail whole
    es.fail_items(201, 429, 400, 503)  # then a partial failure: one refused for good, two to retry
    app = LoggerApp(b, settings_for(tmp_path, es))
    b.subscribe_all()
    b.worker(["bus_incoming", *app.dispatch.queues], burst=True, install_signals=False, settings=FAST).run()
    app.drain_shippers()
    indexed = es.ids()
    assert len(indexed) == len(set(indexed)) == 29
    rejected = [json.loads(x) for x in r.lrange("resque:bus:log:rejected", 0, -1)]
    assert [x["event"]["bus_id"] for x in rejected] == [ids[2]]
    assert "mapper_parsing_exception" in rejected[0]["reason"]
    assert sorted([*indexed, ids[2]]) == sorted(ids)
    assert r.xpending("resque:bus:log", "elasticsearch")["pending"] == 0


def test_a_dead_shippers_pending_events_are_claimed(redis_url: str, r: redis.Redis, es: ElasticsearchEmulator) -> None:
    b = Bus(redis_url)
    log_ = EventLog(r, b.keys, max_length=100)
    pipe = r.pipeline()
    for n in range(5):
        log_.append(pipe, {"bus_id": f"id-{n}", "bus_event_type": "x"})
    pipe.execute()
    sink = ElasticsearchSink(ElasticsearchSinkSettings(url=es.url))
    dead = Shipper(r, b.keys, sink)
    dead.consumer = "other-host:1"
    dead.ensure_group()
    r.xreadgroup("elasticsearch", "other-host:1", {"resque:bus:log": ">"}, count=3)  # took 3, then died
    import threading

    live = Shipper(r, b.keys, sink, claim_idle_ms=0)
    live.ship_pending(threading.Event())
    live.ship_once(threading.Event())
    assert es.ids() == [f"id-{n}" for n in range(5)]


def test_a_lagging_sink_holds_events_on_the_bus(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    b = Bus(redis_url)
    settings = settings_for(tmp_path, None, stream_length=10, backpressure=0.5, sinks=("redis", "elasticsearch"))
    app = LoggerApp(b, settings)  # Elasticsearch at port 9: nothing listens, the shipper lags
    app.shippers[0].ensure_group()
    b.subscribe_all()
    b.publish_many([("tick", {"n": n}) for n in range(20)])
    worker = b.worker(["bus_incoming", *app.dispatch.queues], burst=True, install_signals=False, settings=FAST)
    import threading

    thread = threading.Thread(target=worker.run)
    thread.start()
    from tests.support.polling import wait_for

    wait_for(lambda: r.zcard("resque:bus:retry:{resque:queue:bus_logger_default}") > 0)
    worker.request_stop()
    thread.join()
    assert app.event_log.length() <= 10  # nothing was trimmed away unshipped
    waiting = r.llen("resque:queue:bus_logger_default") + r.zcard("resque:bus:retry:{resque:queue:bus_logger_default}")
    assert app.event_log.length() + waiting == 20


def test_file_sink_rotates(redis_url: str, tmp_path: Path) -> None:
    b = Bus(redis_url)
    b.publish_many([("big", {"n": n, "pad": "x" * 200}) for n in range(40)])
    settings = settings_for(
        tmp_path, file=FileSinkSettings(path=tmp_path / "log" / "e.jsonl", max_bytes=2000, backups=2)
    )
    run_logger(b, settings)
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert files == ["e.jsonl", "e.jsonl.1", "e.jsonl.2"]
    assert all(p.stat().st_size <= 2000 + 400 for p in (tmp_path / "log").iterdir())


def test_logger_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[logger]\nsinks = ["redis", "file"]\nexclude = []\n[logger.file]\npath = "logs/x.jsonl"\n')
    s = load_logger_settings(path, environ={"BUS_LOGGER_ES_API_KEY": "es-key-7f3a"})
    assert s.sinks == ("redis", "file") and s.exclude == ()
    assert s.file.path == tmp_path / "logs" / "x.jsonl"
    assert s.elasticsearch.api_key == "es-key-7f3a" and "es-key-7f3a" not in repr(s)
    from bus import ConfigurationError

    path.write_text('[logger]\nsinks = ["file"]\n')
    assert load_logger_settings(path, environ={}).sinks == ("redis", "file")  # the others ship from it
    path.write_text('[logger]\nsinkz = ["redis"]\n')
    with pytest.raises(ConfigurationError, match="sinkz"):
        load_logger_settings(path, environ={})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://elastic:pw-one-es@127.0.0.1:9200", "holds credentials"),
        ("http://elastic:pw-one/es@127.0.0.1:9200", "holds credentials"),
        ("http://127.0.0.1:92x0", "invalid logger.elasticsearch.url"),
        ("ftp://127.0.0.1/?token=pw-one-es", "must be http(s)://"),
    ],
)
def test_a_bad_elasticsearch_url_is_refused_at_start_without_its_password(url: str, message: str) -> None:
    from bus import ConfigurationError

    with pytest.raises(ConfigurationError, match=re.escape(message)) as refused:
        ElasticsearchSink(ElasticsearchSinkSettings(url=url))
    assert "pw-one" not in str(refused.value)
