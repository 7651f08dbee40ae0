"""One-click unsubscribe end to end: the header of a sent email, then the mail client's POST."""

from __future__ import annotations

import base64
import re
import time
import warnings
from typing import Any

import pytest

from switchboard.app import Switchboard
from switchboard.client import send_email
from switchboard.errors import SettingsError
from switchboard.hooks.app import create_hooks_app
from switchboard.preferences import recipient_key
from switchboard.settings import SwitchboardSettings
from switchboard.unsubscribe import Unsubscribe, UnsubscribeTokens
from switchboard.unsubscribe_app import create_unsubscribe_app
from tests.support.emulators import SendGridEmulator
from tests.switchboard.boards import Make, run
from tests.switchboard.test_sending import listen, make_board

with warnings.catch_warnings():  # Starlette nudges towards httpx2; httpx is installed and works
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient

__all__ = ["make_board"]

SECRET = "k" * 40
LINKS = {
    "public_url": "https://hooks.example.com",
    "unsubscribe": {"secret": SECRET, "mailto": "leave@acme.example"},
    "hooks": {"enabled": ["twilio"]},  # switchboard hooks serves the links beside the webhooks
}
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def shipped(board: Switchboard) -> dict[str, Any]:
    return dict(board.templates.get("email", "order_shipped").sample)


def client(board: Switchboard) -> TestClient:
    return TestClient(create_hooks_app(board.bus, board.settings), base_url="https://hooks.example.com")


def link_of(request: Any) -> str:
    headers = request.json["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = r"<(https://hooks\.example\.com/unsubscribe/[^>]+)>, <mailto:leave@acme\.example\?"
    match = re.match(link, headers["List-Unsubscribe"])
    assert match, headers["List-Unsubscribe"]
    return match.group(1)


def test_the_one_click_post_from_a_sent_emails_header_opts_the_recipient_out(
    make_board: Make, sendgrid_emulator: SendGridEmulator
) -> None:
    board = make_board(**LINKS)
    changes = listen(board, "preference_changed", "email_failed")
    send_email(bus=board.bus, to="ada@example.com", template="order_shipped", data=shipped(board))
    run(board)
    [request] = sendgrid_emulator.requests_to()
    url = link_of(request)
    assert url in request.json["content"][0]["value"]  # unsubscribe_url in the template's footer

    web = client(board)
    page = web.get(url)
    assert page.status_code == 200 and '<form method="post">' in page.text and "receipts" in page.text
    assert board.preferences.show(recipient_key(None, "ada@example.com")) == []  # a GET changes nothing

    answer = web.post(url, **ONE_CLICK)
    assert answer.status_code == 200 and "unsubscribed" in answer.text
    [choice] = board.preferences.show(recipient_key(None, "ada@example.com"))
    assert (choice.category, choice.channel, choice.allowed) == ("orders", "email", False)
    assert choice.source == "unsubscribe link"
    assert web.post(url, **ONE_CLICK).status_code == 200  # a second click: no change, no second event

    send_email(bus=board.bus, to="ada@example.com", template="order_shipped", data=shipped(board))
    send_email(bus=board.bus, to="bob@example.com", template="order_shipped", data=shipped(board))
    run(board)
    assert len(sendgrid_emulator.requests_to()) == 2  # Bob's went; Ada's did not
    changed = [e for e in changes if "allowed" in e]
    assert [(e["category"], e["channel"], e["allowed"]) for e in changed] == [("orders", "email", False)]
    assert changed[0]["recipient_key"] == recipient_key(None, "ada@example.com")
    assert [e["status"] for e in changes if "status" in e] == ["opted_out"]


def test_forged_expired_and_other_recipients_tokens_are_refused(make_board: Make) -> None:
    board = make_board(**{**LINKS, "unsubscribe": {"secret": SECRET, "max_age_days": 1.5 / 86400}})
    web = client(board)
    ada = recipient_key(None, "ada@example.com")
    bob = recipient_key(None, "bob@example.com")
    ours = UnsubscribeTokens(SECRET, max_age=60)
    token = ours.issue(Unsubscribe(ada, "orders", "email"))

    rest = token.split(".", 1)[1]
    swapped = base64.urlsafe_b64encode(f'["{bob}","orders","email"]'.encode()).decode().rstrip("=")
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # a damaged signature
        f"{swapped}.{rest}",  # Ada's signature on Bob's key
        UnsubscribeTokens("x" * 40, max_age=60).issue(Unsubscribe(bob, "orders", "email")),  # another secret
        ours.issue(Unsubscribe(ada, "security", "email")),  # ours, but security cannot be opted out of
        "not-a-token",
        "a" * 5000,
    ]
    for bad in forged:
        assert web.post(f"/unsubscribe/{bad}", **ONE_CLICK).status_code == 400, bad
        assert web.get(f"/unsubscribe/{bad}").status_code == 400, bad
    assert board.preferences.show(ada) == [] and board.preferences.show(bob) == []

    time.sleep(2.2)  # past max_age (tokens carry whole seconds)
    expired = web.post(f"/unsubscribe/{token}", **ONE_CLICK)
    assert expired.status_code == 400 and "expired" in expired.text
    assert board.preferences.show(ada) == []


def test_no_secret_no_links_and_no_app(make_board: Make, sendgrid_emulator: SendGridEmulator) -> None:
    board = make_board(public_url="https://hooks.example.com")
    send_email(bus=board.bus, to="ada@example.com", template="order_shipped", data=shipped(board))
    run(board)
    [request] = sendgrid_emulator.requests_to()
    assert "List-Unsubscribe" not in (request.json.get("headers") or {})
    with pytest.raises(SettingsError, match=r"unsubscribe\.secret"):
        create_unsubscribe_app(board.bus, SwitchboardSettings())
    hooks = TestClient(
        create_hooks_app(
            board.bus, SwitchboardSettings.from_table({**LINKS, "unsubscribe": {}, "twilio": {"auth_token": "t"}})
        )
    )
    assert hooks.post("/unsubscribe/anything", **ONE_CLICK).status_code == 404  # no secret: no links served
