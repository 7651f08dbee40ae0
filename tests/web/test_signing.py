"""The cookie signer: values come back only unaltered, for their own purpose, while young enough."""

from __future__ import annotations

from bus.web.signing import Signer


def test_a_signed_value_comes_back_for_its_own_purpose_only() -> None:
    signer = Signer(b"k" * 32)
    signed = signer.sign("flash", "ok|Retried 1 failure(s). 日本")
    assert signer.unsign("flash", signed, max_age=60) == "ok|Retried 1 failure(s). 日本"
    assert signer.unsign("session", signed, max_age=60) is None
    assert Signer(b"j" * 32).unsign("flash", signed, max_age=60) is None
    assert signer.unsign("flash", signed[:-2] + ("AA" if signed[-2:] != "AA" else "BB"), max_age=60) is None
    assert all(c.isalnum() or c in "-_." for c in signed)  # a cookie holds it as it is


def test_an_expired_value_is_refused() -> None:
    signer = Signer()
    assert signer.unsign("session", signer.sign("session", "abc"), max_age=-1) is None


def test_hostile_cookies_are_refused_not_a_crash() -> None:
    signer = Signer()
    for hostile in ("", "a.b.c", "YQ.0.\u00e9", "\u00e9" * 40, "." * 10, "e30.0.0", "YQ.\u00b2.0", "YQ.\u0663.0"):
        assert signer.unsign("session", hostile, max_age=60) is None


def test_form_macs_are_hex_and_bound_to_their_value_and_purpose() -> None:
    signer = Signer()
    mac = signer.mac("csrf", "nonce:session")
    assert int(mac, 16) >= 0
    assert signer.mac_matches("csrf", "nonce:session", mac)
    assert not signer.mac_matches("csrf", "nonce:other", mac)
    assert not signer.mac_matches("flash", "nonce:session", mac)
    assert not signer.mac_matches("csrf", "nonce:session", "\u00e9")
    assert not signer.mac_matches("csrf", "nonce:session", "\u00b2" * len(mac))  # a digit to isdigit(), not hex
    assert not signer.mac_matches("csrf", "nonce:session", mac[:-2])
