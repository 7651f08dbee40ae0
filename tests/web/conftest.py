"""Fixtures for the dashboard: the app on the test server, a client that knows its CSRF token."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():  # Starlette nudges towards httpx2; httpx is installed and works
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient

from bus import Bus
from bus.web import WebSettings, create_app

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


class Client(TestClient):
    """A test client on a loopback Host header that fills in the CSRF token for forms."""

    def csrf(self) -> str:
        """The token of this client's CSRF cookie (set by the first response if need be)."""
        match = _CSRF_META.search(self.page("/login").text)
        assert match, "no csrf meta tag"
        return match.group(1)

    def page(self, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.get(url, headers={"accept": "text/html"}, **kwargs)
        return response

    def submit(
        self, url: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> httpx.Response:
        items = list(data.items()) if isinstance(data, dict) else list(data or [])
        items.append(("csrf_token", self.csrf()))
        body = urlencode([(k, str(v)) for k, v in items])
        response: httpx.Response = self.post(url, content=body, headers=_FORM, follow_redirects=False, **kwargs)
        return response


_FORM = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}


@pytest.fixture(autouse=True)
def _scratch_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings.toml of the checkout leaks into a test."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def app(bus: Bus) -> Starlette:
    return create_app(bus, WebSettings())


@pytest.fixture
def client(app: Starlette) -> Iterator[Client]:
    with Client(app, base_url="http://localhost") as c:
        yield c
