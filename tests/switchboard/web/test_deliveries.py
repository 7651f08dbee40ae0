"""Deliveries: search by status, channel, recipient and time; pages; one record; masked recipients."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

from bus import Bus
from switchboard.privacy import recipient_digest
from switchboard.web.board import Board
from tests.switchboard.web.helpers import WELCOME, record, send_for_real
from tests.web.conftest import Client
from tests.web.helpers import XSS


def ids(html: str) -> list[str]:
    """The request ids of the records listed, in page order."""
    return re.findall(r'href="/switchboard/deliveries/record\?id=[a-z]+%3A([^"]+)"', html)


def search(client: Client, **form: str) -> str:
    """Post the search form; returns the URL it redirects to."""
    response = client.submit("/switchboard/deliveries/search", form)
    assert response.status_code == 303
    return response.headers["location"]


def test_a_real_send_is_listed_with_its_recipient_masked(client: Client, bus: Bus) -> None:
    send_for_real(
        bus, ("send_email", {"to": "ada@example.com", "template": "welcome", "data": WELCOME, "locale": "fr"})
    )
    page = client.page("/switchboard/deliveries").text
    row = page.split('<tr data-status="accepted">')[1].split("</tr>")[0]
    assert "a***@example.com" in row and ">email<" in row and "welcome" in row and "outbox" in row
    assert "ada@example.com" not in page
    link = re.search(r'href="(/switchboard/deliveries/record\?id=[^"]+)"', row)
    assert link
    detail = client.page(link.group(1).replace("&amp;", "&")).text
    assert "a***@example.com" in detail and "ada@example.com" not in detail
    assert "recipient_digests" not in detail and recipient_digest("ada@example.com") not in detail


def test_search_by_status_channel_and_time(client: Client, bus: Bus) -> None:
    now = time.time()
    record(bus, "old-sent", created=now - 7200)
    record(bus, "new-failed", status="failed", error="bounced", created=now - 60)
    record(bus, "new-sms", channel="sms", to="+14155550123", created=now - 30)
    assert ids(client.page("/switchboard/deliveries").text) == ["new-sms", "new-failed", "old-sent"]
    assert ids(client.page("/switchboard/deliveries?status=failed").text) == ["new-failed"]
    assert ids(client.page("/switchboard/deliveries?channel=sms").text) == ["new-sms"]
    assert ids(client.page("/switchboard/deliveries?since=1h").text) == ["new-sms", "new-failed"]
    assert ids(client.page("/switchboard/deliveries?status=sent&channel=email").text) == ["old-sent"]
    url = search(client, status="sent", channel="email", since="24h", to="")
    assert parse_qs(urlsplit(url).query) == {"status": ["sent"], "channel": ["email"], "since": ["24h"]}
    empty = client.page("/switchboard/deliveries?status=stalled").text
    assert ids(empty) == [] and "No delivery matches this search." in empty
    junk = client.page("/switchboard/deliveries?status=<b>&channel=fax&since=1y&page=x&recipient=zz")
    assert junk.status_code == 200 and ids(junk.text) == ["new-sms", "new-failed", "old-sent"]


def test_a_search_for_something_rare_reads_a_bounded_number_of_records(client: Client, bus: Bus) -> None:
    now = time.time()
    record(bus, "old-failed", status="failed", created=now - 600)
    for n in range(6):
        record(bus, f"sent-{n}", created=now - 60 + n)
    board_of_app(client).deliveries.scan_limit = 4  # as if there were a million records
    page = client.page("/switchboard/deliveries?status=failed").text
    assert ids(page) == [] and 'id="search-cut-short"' in page and "newest 4 records only" in page
    board_of_app(client).deliveries.scan_limit = 100
    page = client.page("/switchboard/deliveries?status=failed").text
    assert ids(page) == ["old-failed"] and 'id="search-cut-short"' not in page


def board_of_app(client: Client) -> Board:
    board: Board = client.app.state.switchboard  # type: ignore[attr-defined]
    return board


def test_search_by_recipient_never_puts_the_address_in_a_url_or_on_the_page(client: Client, bus: Bus) -> None:
    record(bus, "to-ada", to="Ada@Example.com")
    record(bus, "to-bob", to="bob@example.com")
    record(bus, "to-phone", channel="sms", to="+14155550123")
    url = search(client, to=" ada@example.com ", status="")
    assert "ada" not in url.lower() and "example.com" in url  # only the masked form and the digest
    assert parse_qs(urlsplit(url).query)["recipient"] == [recipient_digest("ada@example.com")]
    page = client.page(url).text
    assert ids(page) == ["to-ada"]
    assert "ada@example.com" not in page.lower() and "a***@example.com" in page
    assert 'id="recipient-filter"' in page
    older = search(client, recipient=recipient_digest("ada@example.com"), masked="a***@example.com", status="sent")
    assert ids(client.page(older).text) == ["to-ada"]  # the recipient filter survives a change of status
    assert ids(client.page(search(client, to="+14155550123")).text) == ["to-phone"]
    assert ids(client.page(search(client, to="nobody@example.com")).text) == []


def test_pages_of_fifty_newest_first(client: Client, bus: Bus) -> None:
    now = time.time()
    for i in range(120):
        record(bus, f"r{i:03d}", created=now - 1000 + i)
    first = client.page("/switchboard/deliveries").text
    assert ids(first)[:2] == ["r119", "r118"] and len(ids(first)) == 50
    assert 'href="?page=2" rel="next"' in first and 'rel="prev"' not in first
    second = client.page("/switchboard/deliveries?page=2").text
    assert ids(second)[0] == "r069" and 'href="?" rel="prev"' in second
    third = client.page("/switchboard/deliveries?page=3").text
    assert len(ids(third)) == 20 and 'rel="next"' not in third and "101-120" in third


def test_hostile_record_fields_are_escaped(client: Client, bus: Bus) -> None:
    delivery_id = record(bus, XSS, status="failed", error=XSS, error_code=XSS, provider=XSS, template=XSS)
    for html in (client.page("/switchboard/deliveries").text, client.page("/switchboard/deliveries?partial=1").text):
        assert "<script>window.__xss" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    link = re.search(r'href="(/switchboard/deliveries/record\?id=[^"]+)"', client.page("/switchboard/deliveries").text)
    assert link
    detail = client.page(link.group(1).replace("&amp;", "&"))
    assert detail.status_code == 200 and "<script>window.__xss" not in detail.text
    assert detail.text.count("&lt;script&gt;window.__xss=1&lt;/script&gt;") >= 4
    assert delivery_id.startswith("email:")


def test_an_unknown_record_is_not_found(client: Client) -> None:
    assert client.page("/switchboard/deliveries/record?id=email:nope").status_code == 404
    assert client.page("/switchboard/deliveries/record").status_code == 404


def test_a_record_with_malformed_numbers_is_still_listed(client: Client, bus: Bus) -> None:
    delivery_id = record(bus, "mangled")
    bus.redis.hset(f"resque:switchboard:delivery:{delivery_id}", mapping={"attempts": "two", "updated_at": "nan"})
    listing = client.page("/switchboard/deliveries")
    assert listing.status_code == 200 and "mangled" in listing.text
    detail = client.page(f"/switchboard/deliveries/record?id={delivery_id}")
    assert detail.status_code == 200 and "two" not in detail.text.split("<main")[1].split("Tries")[0]


def test_a_delivery_page_shows_the_providers_events_in_its_timeline(client: Client, bus: Bus) -> None:
    from switchboard.deliveries import Suppressions
    from switchboard.keys import SwitchboardKeys
    from switchboard.statuses import StatusApplier
    from tests.switchboard.web.helpers import deliveries

    delivery_id = record(bus, "bounced", status="accepted", provider="sendgrid", provider_message_id="m-1")
    applier = StatusApplier(
        bus=bus, deliveries=deliveries(bus), suppressions=Suppressions(bus.redis, SwitchboardKeys(bus.keys))
    )
    applier.handle(
        {
            "provider": "sendgrid",
            "channel": "email",
            "event_id": "ev-1",
            "event": "bounce",
            "status": "bounced",
            "at": time.time(),
            "recipient": "a***@example.com",
            "recipient_digest": recipient_digest("ada@example.com"),
            "message_id": "m-1",
            "reason": f"550 no such user {XSS}",
            "code": "bounce",
        }
    )
    page = client.page(f"/switchboard/deliveries/record?id={delivery_id}").text
    timeline = page.split('id="delivery-timeline"')[1].split("</table>")[0]
    assert [re.sub(r"<[^>]+>", "", s) for s in re.findall(r'data-status="([a-z]+)"', timeline)] == [
        "accepted",
        "bounced",
    ]
    assert "550 no such user" in timeline and XSS not in page and "bounce" in timeline


def test_a_record_links_to_its_trace_and_outbox_message_with_fields_in_words(client: Client, bus: Bus) -> None:
    """Issue 24 item 11: the record's story, its field names read as words."""
    delivery_id = record(
        bus, "req-9", bus_id="1764290000-ab12", provider="outbox", provider_message_id="outbox-0123456789abcdef"
    )
    page = client.page(f"/switchboard/deliveries/record?id={delivery_id}").text
    facts = page.split('id="delivery-record"')[1].split("</dl>")[0]
    labels = re.findall(r"<dt>(.*?)</dt>", facts)
    assert "Created" in labels and "Provider message id" in labels and "Event" in labels
    assert not [label for label in labels if "_" in label]
    assert '<a href="/events/trace/1764290000-ab12">1764290000-ab12</a>' in facts
    assert 'href="/switchboard/outbox?channel=email#outbox-0123456789abcdef"' in facts
