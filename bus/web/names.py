"""Names other apps chose (queues, apps, workers, event types), shown so they cannot lie.

A name may carry Unicode bidi controls: ``\\u202eeueuq`` displays as "queue", and an
override left open reverses the rest of the sentence around it. Every control a name holds
is shown as its code point (``[U+202E]``), and the name is isolated from its neighbours:
``<bdi>`` in templates (:func:`name_html`), first-strong isolate marks in sentences built as
text (:func:`isolated`), so right-to-left names never reorder the words around them.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
REORDERING = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066\u2067]")
"""The controls but the first-strong isolate and its pop, which :func:`isolated` puts around names."""
FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"


def visible(name: Any) -> str:
    """``name`` with each bidi control shown as its code point."""
    return BIDI_CONTROLS.sub(_code_point, str(name))


def reordering_shown(text: str) -> str:
    """``text`` (maybe a sentence of :func:`isolated` names) with every control that could reorder it shown."""
    return REORDERING.sub(_code_point, text)


def _code_point(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group()):04X}]"


def isolated(name: Any) -> str:
    """``name`` for a sentence made of text (a flash message, a title, a problem): visible and isolated."""
    return f"{FIRST_STRONG_ISOLATE}{visible(name)}{POP_DIRECTIONAL_ISOLATE}"


def name_html(name: Any) -> Markup:
    """``name`` for a page: escaped, visible and in a ``<bdi>`` (the ``name`` filter)."""
    return Markup("<bdi>{}</bdi>").format(visible(name))
