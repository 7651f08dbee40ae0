"""Preferences, unsubscribe tokens and digest collections, against a real server."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from bus.keys import Keys
from switchboard.channels import Channel
from switchboard.digests import Digests, DigestSpec, DigestSpecError, Flush, digest_id_of, parse_digest
from switchboard.keys import SwitchboardKeys
from switchboard.preferences import PreferenceRefused, Preferences, allows, check_change, recipient_key
from switchboard.unsubscribe import InvalidToken, Unsubscribe, UnsubscribeTokens, list_unsubscribe_headers

KEYS = SwitchboardKeys(Keys("resque"))
SECRET = "s" * 40
OPT_OUT = {"security": False, "marketing": True, "orders": True}


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_a_user_id_or_else_the_address_is_the_key_and_neither_is_stored_in_clear(r: redis.Redis) -> None:
    by_user = recipient_key("u-42", "ada@example.com")
    assert by_user == recipient_key(" u-42 ", "other@example.com")  # the user keeps choices across addresses
    assert recipient_key(None, "Ada@Example.com ") == recipient_key(None, "ada@example.com")
    assert by_user.startswith("user:") and recipient_key(None, "ada@example.com").startswith("to:")
    store = Preferences(r, KEYS, clock=lambda: 1000.0)
    store.set(by_user, "marketing", Channel.EMAIL, False, "cli")
    stored = [(key, r.hgetall(key)) for key in r.scan_iter()]
    dump = repr(stored)
    assert stored and "u-42" not in dump and "ada" not in dump
    with pytest.raises(PreferenceRefused):
        recipient_key(None, "  ")


def test_opting_out_blocks_only_that_category_on_that_channel(r: redis.Redis) -> None:
    store = Preferences(r, KEYS, clock=lambda: 1000.0)
    key = recipient_key("u-1", None)
    assert store.set(key, "marketing", Channel.EMAIL, False, "unsubscribe link").changed is True
    assert store.set(key, "marketing", Channel.EMAIL, False, "unsubscribe link").changed is False  # no change, no event

    def lookup(category: str, channel: Channel) -> bool:
        pipe = r.pipeline(transaction=False)
        store.queue_lookup(pipe, key, category, channel)
        return allows(pipe.execute()[0])

    assert not lookup("marketing", Channel.EMAIL)
    assert lookup("marketing", Channel.SMS) and lookup("orders", Channel.EMAIL)
    assert lookup("marketing", Channel.EMAIL) is False and allows(None) is True
    assert store.set(key, "marketing", Channel.EMAIL, True, "app:settings-page").changed is True
    assert lookup("marketing", Channel.EMAIL)
    (shown,) = store.show(key)
    assert (shown.category, shown.channel, shown.allowed, shown.at, shown.source) == (
        "marketing",
        "email",
        True,
        1000.0,
        "app:settings-page",
    )
    assert store.clear(key, category="marketing").count == 1 and store.show(key) == []


def test_an_unreadable_preference_is_read_as_no(r: redis.Redis) -> None:
    key = recipient_key("u-2", None)
    r.hset(KEYS.preferences(key), "marketing:email", "{not json")
    assert allows(r.hget(KEYS.preferences(key), "marketing:email")) is False
    (shown,) = Preferences(r, KEYS, clock=time.time).show(key)
    assert shown.source == "unreadable" and shown.allowed is False


def test_security_cannot_be_opted_out_of_and_unknown_categories_are_refused() -> None:
    check_change("marketing", False, OPT_OUT)
    check_change("security", True, OPT_OUT)
    with pytest.raises(PreferenceRefused, match="cannot be opted out of"):
        check_change("security", False, OPT_OUT)
    with pytest.raises(PreferenceRefused, match="unknown category 'weekly'"):
        check_change("weekly", False, OPT_OUT)


def test_tokens_round_trip_and_cannot_be_forged_moved_or_kept_forever() -> None:
    tokens = UnsubscribeTokens(SECRET, max_age=60)
    ada = Unsubscribe(recipient_key("u-1", None), "marketing", "email")
    token = tokens.issue(ada)
    assert tokens.read(token) == ada
    assert "u-1" not in token
    # Another secret, a flipped character, a token for someone else spliced with ada's signature.
    with pytest.raises(InvalidToken):
        UnsubscribeTokens("t" * 40, max_age=60).read(token)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(InvalidToken):
        tokens.read(flipped)
    bob = tokens.issue(Unsubscribe(recipient_key("u-2", None), "marketing", "email"))
    spliced = bob.split(".")[0] + "." + ".".join(token.split(".")[1:])
    with pytest.raises(InvalidToken):
        tokens.read(spliced)
    for junk in ["", "x" * 5000, "é.é.é", "a.b.c"]:
        with pytest.raises(InvalidToken):
            tokens.read(junk)
    already_too_old = UnsubscribeTokens(SECRET, max_age=-1)  # any age is past it
    with pytest.raises(InvalidToken, match="expired"):
        already_too_old.read(token)


def test_list_unsubscribe_headers_follow_rfc_8058() -> None:
    tokens = UnsubscribeTokens(SECRET, max_age=60)
    url = tokens.url("https://hooks.example.com/", Unsubscribe("to:abc", "marketing", "email"))
    assert url.startswith("https://hooks.example.com/unsubscribe/")
    headers = list_unsubscribe_headers(url, "unsubscribe@example.com")
    token = url.rsplit("/", 1)[1]
    assert headers == {
        "List-Unsubscribe": f"<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert list_unsubscribe_headers(url)["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"window": "1h", "colour": 1}, "unknown key"),
        ({"window": "soon"}, "window must be a duration"),
        ({"window": "8d"}, "at most 7 days"),
        ({"window": 0}, "more than 0"),
        ({"window": "1h", "max_items": 0}, "max_items"),
        ({"window": "1h", "key": [1]}, "key must be"),
    ],
)
def test_a_bad_digest_table_names_the_problem(table: dict[str, object], message: str) -> None:
    with pytest.raises(DigestSpecError, match=message):
        parse_digest(table)


def test_digest_table_forms() -> None:
    assert parse_digest({"window": "30m", "key": "post_id"}) == DigestSpec(1800.0, 100, ("post_id",))
    assert parse_digest({"window": 2, "max_items": 5}) == DigestSpec(2.0, 5, ())


def test_a_window_collects_once_per_event_and_a_redone_flush_sends_the_same_items(r: redis.Redis) -> None:
    digests = Digests(r, KEYS)
    spec = DigestSpec(window=60, max_items=100)
    digest = digest_id_of("email", "comments", recipient_key("u-1", None), ["post-7"])
    first = digests.collect(digest, spec, "bus-1", {"n": 1})
    assert first.opened and first.count == 1
    again = digests.collect(digest, spec, "bus-1", {"n": 1})  # the same event, redelivered
    assert again.duplicate and again.count == 1 and not again.opened
    second = digests.collect(digest, spec, "bus-2", {"n": 2})
    assert (second.window, second.opened, second.count) == (first.window, False, 2)
    state, items = digests.take(digest, first.window, spec)
    assert state is Flush.TAKEN and [i["n"] for i in items] == [1, 2]
    # An item arriving during the flush opens the next window.
    late = digests.collect(digest, spec, "bus-3", {"n": 3})
    assert late.opened and late.window != first.window
    # The worker died before recording: the redone flush finds the same items.
    state, items = digests.take(digest, first.window, spec)
    assert state is Flush.AGAIN and [i["n"] for i in items] == [1, 2]
    digests.sent(digest, first.window)
    assert digests.take(digest, first.window, spec) == (Flush.GONE, [])
    assert digests.pending(digest) == 1


def test_one_hundred_racing_collectors_open_one_window_and_lose_nothing(r: redis.Redis, redis_url: str) -> None:
    spec = DigestSpec(window=60, max_items=1000)
    digest = digest_id_of("email", "comments", recipient_key("u-9", None), [])
    results = []

    def collect(n: int) -> None:
        client = redis.Redis.from_url(redis_url)
        results.append(Digests(client, KEYS).collect(digest, spec, f"bus-{n}", {"n": n}))

    threads = [threading.Thread(target=collect, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(c.opened for c in results) == 1
    (window,) = {c.window for c in results}
    state, items = Digests(r, KEYS).take(digest, window, spec)
    assert state is Flush.TAKEN and sorted(i["n"] for i in items) == list(range(100))
