"""Running a CLI entry point in-process, as a user would call it, for tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest


class CliRun:
    """Calls ``main(args + extra)``; returns (exit code, stdout, stderr)."""

    def __init__(self, main: Callable[[list[str]], None], capsys: pytest.CaptureFixture[str], *extra: str) -> None:
        self.main = main
        self.capsys = capsys
        self.extra = list(extra)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = 0
        try:
            self.main([*args, *self.extra])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)
