"""A real headless Chromium (Debian's) driven by Playwright, and the dashboard served by uvicorn."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from bus.backend.embedded import free_port
from bus.web import WebSettings
from bus.web.serving import uvicorn_config
from tests.bus.helpers import ROOT
from tests.support.polling import wait_for

SCREENSHOTS = ROOT / "test-output" / "screenshots"
CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "chromium", "chromium-browser")


def chromium_binary() -> str | None:
    """Debian's Chromium (Playwright's own download cannot work here)."""
    for candidate in CANDIDATES:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    return None


@contextmanager
def serving(app: Starlette, settings: WebSettings | None = None) -> Iterator[str]:
    """The app on a free loopback port in a background thread, configured as ``bus web``
    configures uvicorn for ``settings``; yields its base URL."""
    port = free_port()
    bind = replace(settings or WebSettings(), host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn_config(app, bind, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        return bool(server.started)

    wait_for(started, timeout=10, interval=0.01, message="the dashboard did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
