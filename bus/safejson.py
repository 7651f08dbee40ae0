"""Reading JSON that came from outside (another app, Redis, a provider, a form) without crashing.

orjson for speed; the standard library for what orjson refuses yet is valid (integers past
64 bits, as Ruby writes them); and nesting too deep to read is a ``ValueError`` like any
other bad JSON, never a ``RecursionError`` that would take down whatever was reading it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_std_decode = json.JSONDecoder().decode


def read_json(text: str | bytes | bytearray) -> Any:
    """Parse JSON; every way it can be bad (syntax, encoding, depth) raises ``ValueError``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return _std_decode(text.decode("utf-8") if isinstance(text, bytes | bytearray) else text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
