"""Web settings from [web] and the environment; refusing to listen beyond loopback without auth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bus.backend.embedded import free_port
from bus.cli import main
from bus.errors import ConfigurationError
from bus.web.settings import WebSettings, check_bind, is_loopback, load_web_settings
from tests.bus.helpers import ROOT
from tests.support.polling import wait_for

TOKEN = "t0k-for-the-settings-tests-only"


def test_defaults_are_loopback_and_open() -> None:
    s = load_web_settings(environ={})
    assert (s.host, s.port, s.token, s.auth_required) == ("127.0.0.1", 8484, None, False)


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    file = tmp_path / "settings.toml"
    web = 'host = "0.0.0.0"\nport = 9000\nusername = "ops"\npassword = "password-one"\n'
    file.write_text(f'[bus]\nnamespace = "x"\n[web]\n{web}')
    env = {"BUS_WEB_TOKEN": TOKEN, "BUS_WEB_PASSWORD": "password-two"}
    s = load_web_settings(file, environ=env, port=9100)
    assert (s.host, s.port, s.username, s.password, s.token) == ("0.0.0.0", 9100, "ops", "password-two", TOKEN)
    assert "password-two" not in repr(s) and TOKEN not in repr(s)
    key = "k" * 40
    keyed = load_web_settings(file, environ={"BUS_WEB_SECRET_KEY": key})
    assert keyed.secret_key == key and key not in repr(keyed)
    via_env = load_web_settings(environ={"BUS_SETTINGS": str(file)})
    assert via_env.port == 9000
    proxies = load_web_settings(environ={"BUS_WEB_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"})
    assert proxies.trusted_proxies == ("10.0.0.1", "10.1.0.0/16")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('port = "x"', "web.port must be a port number"),
        ("port = true", "web.port must be a port number"),
        ("port = 70000", "web.port must be a port number"),
        ('colour = "red"', "unknown setting(s) web.colour"),
        ('username = "ops"', "must be set together"),
        ("token = 5", "must be a string"),
        ('secret_key = "short"', "web.secret_key must be at least 32 characters"),
        ('token = "guessable"', "web.token must be at least 24 characters"),
        ('username = "ops"\npassword = "hunter2"', "web.password must be at least 12 characters"),
        ('trusted_proxies = ["10.0.0.1", "proxy.local"]', "web.trusted_proxies: 'proxy.local' is not an IP"),
        ("trusted_proxies = [1]", "web.trusted_proxies must be a list of IP addresses"),
    ],
)
def test_bad_settings_are_explained(tmp_path: Path, table: str, message: str) -> None:
    file = tmp_path / "settings.toml"
    file.write_text(f"[web]\n{table}\n")
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_web_settings(file, environ={})


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))


def test_a_public_bind_needs_authentication() -> None:
    check_bind(WebSettings())
    with pytest.raises(ConfigurationError, match=r"refusing to serve the dashboard on 0\.0\.0\.0"):
        check_bind(WebSettings(host="0.0.0.0"))
    check_bind(WebSettings(host="0.0.0.0", token=TOKEN))
    check_bind(WebSettings(host="0.0.0.0", username="u", password="password-one"))


def test_bus_web_refuses_a_public_bind_without_auth(capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["web", "--host", "0.0.0.0", "--redis-url", redis_url])
    assert exit_info.value.code == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without authentication" in capsys.readouterr().err


def test_bus_web_serves_the_dashboard(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    (tmp_path / "settings.toml").write_text('[web]\ntoken = "from-the-file-0123456789ab"\n')
    env = {**os.environ, "BUS_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - handed to the child
    args = [sys.executable, "-m", "bus.cli", "web", "--port", str(port), "--settings", str(tmp_path / "settings.toml")]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"

        logged = (tmp_path / "web.log").read_text

        def healthz() -> httpx.Response:
            assert process.poll() is None, logged()
            return httpx.get(f"{base}/healthz")

        health = wait_for(healthz, timeout=20, interval=0.05, message=logged, not_yet=(httpx.TransportError,))
        assert health.json() == {"status": "ok", "redis": True}
        assert httpx.get(f"{base}/metrics").status_code == 401  # the token from the file is required
        authed = httpx.get(f"{base}/metrics", headers={"authorization": "Bearer from-the-file-0123456789ab"})
        assert authed.status_code == 200 and "bus_processed_total" in authed.text
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
