"""``switchboard web``: refuses a public bind without authentication; serves the pages, logging no typed data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bus.backend.embedded import free_port
from switchboard.cli import main
from tests.support.polling import wait_for
from tests.switchboard.web.conftest import ROOT, SENDGRID_KEY

TOKEN = "cli-web-token-0123456789abcdef"
TYPED = "typed-marker-7f3a"


def test_a_public_bind_without_authentication_is_refused(capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["web", "--host", "0.0.0.0", "--redis-url", redis_url])
    assert exit_info.value.code == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without authentication" in capsys.readouterr().err


def test_a_missing_templates_folder_is_a_one_line_error(capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["web", "--port", str(free_port()), "--redis-url", redis_url])  # ./templates: not in the scratch dir
    assert exit_info.value.code == 2
    assert "templates folder" in capsys.readouterr().err


def test_it_serves_the_switchboard_pages(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[web]\ntoken = "{TOKEN}"\n[switchboard]\ntemplates_dir = "{ROOT / "templates"}"\n'
        f'[switchboard.sendgrid]\napi_key = "{SENDGRID_KEY}"\n'
    )
    env = {**os.environ, "BUS_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    log_path = tmp_path / "web.log"
    args = [sys.executable, "-m", "switchboard.cli", "web", "--port", str(port), "--settings", str(settings)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, headers={"authorization": f"Bearer {TOKEN}"}) as c:
                wait_until_up(c, process, log_path)
                templates = c.get("/switchboard/templates", headers={"accept": "text/html"})
                assert templates.status_code == 200 and 'data-template="email/welcome"' in templates.text
                metrics = c.get("/metrics").text
                assert "bus_processed_total" in metrics and 'provider="sendgrid"} 1' in metrics
                token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', templates.text)
                assert token
                tried = c.post(
                    "/switchboard/templates/email/welcome",
                    data={"csrf_token": token.group(1), "data": f'{{"first_name": "{TYPED}"}}'},
                )
                assert tried.status_code == 200 and TYPED in tried.text
                found = c.post("/switchboard/deliveries/search", data={"csrf_token": token.group(1), "to": TYPED})
                assert found.status_code == 303 and TYPED not in found.headers["location"]
                assert SENDGRID_KEY not in templates.text + metrics + tried.text
        finally:
            process.terminate()
            process.wait(timeout=10)
    logged = log_path.read_text()
    assert "POST /switchboard/deliveries/search" in logged  # the access log is on...
    assert TYPED not in logged and SENDGRID_KEY not in logged  # ...and holds no typed data, no secret


def wait_until_up(c: httpx.Client, process: subprocess.Popen[bytes], log_path: Path) -> None:
    def healthy() -> bool:
        assert process.poll() is None, log_path.read_text()
        return c.get("/healthz").status_code == 200

    wait_for(healthy, timeout=20, interval=0.05, message=log_path.read_text, not_yet=(httpx.TransportError,))
