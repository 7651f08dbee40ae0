"""An app that only uses the bus pays only for the bus."""

from __future__ import annotations

import subprocess
import sys

from tests.bus.helpers import ROOT

HEAVY = [
    "pydantic",
    "jinja2",
    "starlette",
    "uvicorn",
    "itsdangerous",
    "prometheus_client",
    "sendgrid",
    "twilio",
    "pyfcm",
    "switchboard",
]


def test_importing_bus_imports_no_switchboard_or_web_dependency() -> None:
    code = f"import sys, bus, bus.cli, bus.runtime.worker; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
