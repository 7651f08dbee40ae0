"""Preferences in the send path: an opted-out category is not sent, recorded and announced."""

from __future__ import annotations

from typing import Any

from switchboard.channels import Channel
from switchboard.client import send_email, send_sms
from switchboard.preferences import recipient_key
from tests.support.emulators import SendGridEmulator, TwilioEmulator
from tests.switchboard.boards import Make, run
from tests.switchboard.test_sending import listen, make_board

__all__ = ["make_board"]  # the fixture, shared with the send path's tests


def sample(board: Any, name: str, channel: str = "email") -> dict[str, Any]:
    return dict(board.templates.get(channel, name).sample)


def shipped(board: Any, channel: str = "email") -> dict[str, Any]:
    return sample(board, "order_shipped", channel)


def test_opting_out_blocks_only_that_category_on_that_channel(
    make_board: Make, sendgrid_emulator: SendGridEmulator, twilio_emulator: TwilioEmulator
) -> None:
    board = make_board()
    seen = listen(board, "email_failed", "email_sent")
    board.preferences.set(recipient_key(None, "ada@example.com"), "orders", Channel.EMAIL, False, "test")
    blocked = send_email(bus=board.bus, to="ada@example.com", template="order_shipped", data=shipped(board))
    send_email(
        bus=board.bus,
        to="ada@example.com",
        template="welcome",
        data=dict(board.templates.get("email", "welcome").sample),
    )
    send_email(bus=board.bus, to="bob@example.com", template="order_shipped", data=shipped(board))
    send_sms(bus=board.bus, to="+14155550123", template="order_shipped", data=shipped(board, "sms"))
    run(board)

    record = board.deliveries.get(f"email:{blocked}")
    assert record is not None and record.status == "opted_out"
    sent_to = sorted(r.json["personalizations"][0]["to"][0]["email"] for r in sendgrid_emulator.requests_to())
    assert sent_to == ["ada@example.com", "bob@example.com"]  # welcome (account) to Ada, orders to Bob
    assert len(twilio_emulator.requests_to()) == 1
    [event] = [e for e in seen if e["status"] == "opted_out"]
    assert event["delivery_id"] == f"email:{blocked}" and event["category"] == "orders"
    assert "ada@example.com" not in str(event)
    # redelivered: the decision stands, nothing is sent
    send_email(
        bus=board.bus, to="ada@example.com", template="order_shipped", data=shipped(board), idempotency_key=blocked
    )
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 2


def test_security_is_sent_whatever_the_store_says(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    # check_change refuses this; written straight into the store, the send path still ignores it
    board.preferences.set(recipient_key(None, "ada@example.com"), "security", Channel.EMAIL, False, "test")
    reset = dict(board.templates.get("email", "password_reset").sample)
    bus_id = send_email(bus=board.bus, to="ada@example.com", template="password_reset", data=reset)
    run(board)
    record = board.deliveries.get(f"email:{bus_id}")
    assert record is not None and record.status == "accepted"
    [request] = sendgrid_emulator.requests_to()
    assert "List-Unsubscribe" not in (request.json.get("headers") or {})


def test_inline_sends_name_their_category_and_a_user_id_keys_the_choice(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    seen = listen(board, "email_failed", "email_sent")
    board.preferences.set(recipient_key("u-7", None), "marketing", Channel.EMAIL, False, "test")
    news = {"subject": "News", "text": "Hello", "category": "marketing"}
    blocked = send_email(bus=board.bus, to="new-address@example.com", user_id="u-7", **news)
    other = send_email(bus=board.bus, to="new-address@example.com", **news)  # no user id: the address's choice
    run(board)
    statuses = {e["delivery_id"]: (e["status"], e["category"]) for e in seen}
    assert statuses == {f"email:{blocked}": ("opted_out", "marketing"), f"email:{other}": ("accepted", "marketing")}
    assert len(sendgrid_emulator.requests_to()) == 1


def test_each_to_address_has_its_own_choice_and_the_opted_out_ones_are_left_out(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board()
    seen = listen(board, "email_failed", "email_sent")
    for address in ("bob@example.com", "cy@example.com"):
        board.preferences.set(recipient_key(None, address), "orders", Channel.EMAIL, False, "test")
    to = ["ada@example.com", "bob@example.com", "dee@example.com"]
    some = send_email(bus=board.bus, to=to, cc="cy@example.com", template="order_shipped", data=shipped(board))
    nobody = send_email(
        bus=board.bus, to=["bob@example.com", "cy@example.com"], template="order_shipped", data=shipped(board)
    )
    run(board)
    [request] = sendgrid_emulator.requests_to()
    personalization = request.json["personalizations"][0]
    assert [t["email"] for t in personalization["to"]] == ["ada@example.com", "dee@example.com"]
    assert [c["email"] for c in personalization["cc"]] == ["cy@example.com"]  # only `to` choices count
    headers = request.json.get("headers") or {}
    assert "List-Unsubscribe" not in headers  # two people's email: one link could not be both's
    statuses = {e["delivery_id"]: e for e in seen}
    sent, refused = statuses[f"email:{some}"], statuses[f"email:{nobody}"]
    assert sent["status"] == "accepted" and sent["dropped_recipients"] == ["b***@example.com"]
    assert refused["status"] == "opted_out" and "bob@example.com" not in str(refused)
    record = board.deliveries.get(f"email:{some}")
    assert record is not None and "b***@example.com" in record.fields["dropped_recipients"]


def test_a_user_id_keys_every_to_address_of_an_email(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board()
    seen = listen(board, "email_failed", "email_sent")
    board.preferences.set(recipient_key("u-3", None), "marketing", Channel.EMAIL, False, "test")
    news = {"subject": "News", "text": "Hello", "category": "marketing"}
    blocked = send_email(bus=board.bus, to=["a@example.com", "b@example.com"], user_id="u-3", **news)
    run(board)
    assert [e["status"] for e in seen if e["delivery_id"] == f"email:{blocked}"] == ["opted_out"]
    assert sendgrid_emulator.requests_to() == []
