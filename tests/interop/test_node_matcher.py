"""node-queue-bus 0.2.1's driver against Ruby's matcher.rb (which ours follows), filter by filter.

Every case is a subscription and an event on one server, driven by node's real driver in a
single Node process. Cases where node agrees with Ruby pass; where it does not, the test
asserts what node does and marks itself xfail with the reason and the line in
``node_modules/node-queue-bus`` responsible.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from bus import BLANK, EMPTY, KEY, NIL, PRESENT, VALUE, Bus
from tests.interop.nodebus import NodeBus, deviation, failures, unavailable
from tests.support.polling import wait_for
from tests.support.servers import RedisProcess

_why_not = unavailable()
if _why_not is not None:
    pytest.skip(_why_not, allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

NQB = "node_modules/node-queue-bus/lib"

ABSENT = object()


@dataclass(frozen=True)
class Case:
    """One matcher filter against one attribute value, and what each driver does with it."""

    id: str
    filter: Any  # declared by us; a dict {"regexp", "flags"} or a str is written by node's subscribe
    value: Any  # ABSENT: the event has no such attribute
    ruby: bool  # Ruby's matcher.rb (and ours): routed or not
    node: str  # node's driver: "routed", "skipped", or the error that fails the whole event
    why: str = ""  # the deviation, with evidence; empty when node agrees with Ruby
    by_node: bool = False


LITERAL = (
    f"literal filters are unanchored JS regexes ({NQB}/sections/utils.js:88, driver.js:234); Ruby anchors them ^...$"
)
NOT_STRINGS = "node's driver calls String methods on the value"
CASES = [
    Case("literal-equal", "abc", "abc", True, "routed"),
    Case("literal-substring", "abc", "xabcx", False, "routed", LITERAL),
    Case("literal-pattern", "ab.*", "abcd", True, "routed"),
    Case(
        "literal-number",
        "42",
        42,
        True,
        "TypeError: args[key].match is not a function",
        f"{NOT_STRINGS} (driver.js:234): a number fails the whole event; Ruby compares to_s",
    ),
    Case(
        "literal-bool",
        "true",
        True,
        True,
        "TypeError: args[key].match is not a function",
        f"{NOT_STRINGS} (driver.js:234): true fails the whole event; Ruby compares to_s",
    ),
    Case("literal-zero", "0", 0, True, "skipped", "falsy values (0, false, '') never match a literal (driver.js:233)"),
    Case(
        "literal-empty-filter",
        "",
        "x",
        False,
        "routed",
        "an empty filter is an empty JS regex, matching any truthy value (driver.js:233-234); Ruby matches nothing",
        by_node=True,
    ),
    Case("regex-prefix", re.compile("^ab"), "abc", True, "routed"),
    Case("regex-miss", re.compile("^ab"), "xab", False, "skipped"),
    Case(
        "regex-line-anchor",
        re.compile("^b"),
        "a\nb",
        True,
        "skipped",
        "(?-mix:...) is compiled without the m flag (utils.js:76-86): ^ and $ anchor the string, not lines as in Ruby",
    ),
    Case(
        "regex-inline-flags",
        re.compile("(?i:abc)"),
        "ABC",
        True,
        "SyntaxError: Invalid regular expression: /(?i:abc)/g: Invalid group",
        "V8 in Node 20 has no (?i:...) groups (utils.js:86 new RegExp throws): the whole event fails",
    ),
    Case(
        "node-regex-flags",
        {"regexp": "^ab", "flags": "i"},
        "ABc",
        False,
        "routed",
        "node stores /^ab/i as (?i-mx:^ab) (utils.js:36-67); Ruby (matcher.rb) and we only read (?-mix: as a regex "
        "and anchor anything else as a literal",
        by_node=True,
    ),
    Case("key-absent", KEY, ABSENT, False, "skipped"),
    Case("key-null", KEY, None, True, "skipped", "node's key means 'not null' (driver.js:208-210); Ruby's 'has key'"),
    Case("key-value", KEY, "x", True, "routed"),
    Case("blank-absent", BLANK, ABSENT, True, "skipped", "node's blank needs a whitespace string (driver.js:212-214)"),
    Case("blank-null", BLANK, None, True, "skipped", "node's blank needs a whitespace string (driver.js:212-214)"),
    Case("blank-spaces", BLANK, "  ", True, "routed"),
    Case("blank-text", BLANK, "x", False, "skipped"),
    Case(
        "blank-number",
        BLANK,
        42,
        False,
        "TypeError: args[key].trim is not a function",
        f"{NOT_STRINGS} (driver.js:213): a number fails the whole event",
    ),
    Case("empty-string", EMPTY, "", True, "skipped", "node's empty means null (driver.js:216-218); Ruby's means ''"),
    Case("empty-null", EMPTY, None, False, "routed", "node's empty means null (driver.js:216-218); Ruby's means ''"),
    Case("empty-absent", EMPTY, ABSENT, False, "skipped"),
    Case("nil-absent", NIL, ABSENT, True, "routed"),
    Case(
        "nil-null",
        NIL,
        None,
        True,
        "skipped",
        "node's nil means absent only (driver.js:220-222); Ruby's absent or null",
    ),
    Case("nil-text", NIL, "x", False, "skipped"),
    Case(
        "node-null-alias",
        "bus_special_value_null",
        ABSENT,
        False,
        "routed",
        "node also reads bus_special_value_null as nil (driver.js:220); Ruby and we read it as a literal",
        by_node=True,
    ),
    Case("value-null", VALUE, None, False, "skipped"),
    Case("value-absent", VALUE, ABSENT, False, "skipped"),
    Case("value-zero", VALUE, 0, True, "routed"),
    Case("present-text", PRESENT, "x", True, "routed"),
    Case("present-spaces", PRESENT, "  ", False, "skipped"),
    Case("present-null", PRESENT, None, False, "skipped"),
    Case(
        "present-number",
        PRESENT,
        42,
        True,
        "TypeError: args[key].trim is not a function",
        f"{NOT_STRINGS} (driver.js:229): a number fails the whole event (README's {{'user_id': PRESENT}})",
    ),
]


@dataclass(frozen=True)
class Outcome:
    ours: bool
    node: str


@pytest.fixture(scope="module")
def matching(shared_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case's subscription and event on one server, driven by node's real driver at once.

    Each case is an app ``probe_NN`` whose matcher first selects its own event (``probe``),
    then applies the case's filter to ``v``: one Node process judges all the cases.
    """
    url = shared_server.url
    r = shared_server.client()
    r.flushall()
    b = Bus(url, namespace="resque")
    node = NodeBus(url, tmp_path_factory.mktemp("node-matching"))
    try:
        events: list[tuple[str, dict[str, Any]]] = []
        for n, case in enumerate(CASES):
            app, probe = f"probe_{n:02d}", f"c{n:02d}"
            if case.by_node:
                node.subscribe(app, "default", "probe", {"probe": {"regexp": f"^{probe}$"}, "v": case.filter})
            else:
                b.dispatch(app).add(
                    "probe", lambda a: None, matcher={"probe": re.compile(f"^{probe}$"), "v": case.filter}
                )
            events.append(("probe", {"probe": probe} | ({} if case.value is ABSENT else {"v": case.value})))
        b.subscribe_all()
        ours = {s.app_key for event_type, attributes in events for s in b.who_gets(event_type, attributes)}
        b.publish_many(events)

        rider = node.rider(drive=True)
        wait_for(lambda: int(r.get("resque:stat:processed") or 0) + int(r.get("resque:stat:failed") or 0) == len(CASES))
        rider.stop()

        errors: dict[str, str] = {}
        for entry in failures(r):
            probe = json.loads(entry["payload"]["args"][0])["probe"]
            errors[probe] = f"{entry['exception']}: {entry['error']}"
        out: dict[str, Outcome] = {}
        for n, case in enumerate(CASES):
            app, probe = f"probe_{n:02d}", f"c{n:02d}"
            routed = r.llen(f"resque:queue:{app}_default") == 1
            out[case.id] = Outcome(app in ours, errors.get(probe) or ("routed" if routed else "skipped"))
        return out
    finally:
        node.close()
        b.close()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_node_driver_matches_like_ruby(case: Case, matching: dict[str, Outcome]) -> None:
    outcome = matching[case.id]
    assert outcome.ours == case.ruby, "our driver follows Ruby's matcher.rb"
    assert outcome.node == case.node, "node-queue-bus's driver changed: update this case"
    if case.why:
        assert case.node != ("routed" if case.ruby else "skipped")
        deviation(case.why)
    assert case.node == ("routed" if case.ruby else "skipped")
