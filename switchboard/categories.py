"""Categories of message (security, account, orders, marketing): what a template is for.

A template names its category in template.toml (``category = "orders"``); the settings say
what each category means (``[switchboard.categories.<name>]``). Quiet hours hold only
messages of non-transactional categories; ``opt_out`` says whether people may turn a category
off (``security`` may not): read by ``preferences.check_change``, the send path and the
unsubscribe links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bus.errors import ConfigurationError
from bus.settings_loader import apply

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True)
class Category:
    """``[switchboard.categories.<name>]``."""

    description: str = ""
    transactional: bool = True
    """Sent whenever it is due; False: held through the recipient's quiet hours."""
    opt_out: bool = True
    """People may turn it off (preferences, unsubscribe links); False: always sent."""


DEFAULT_CATEGORIES: Mapping[str, Category] = MappingProxyType(
    {
        "security": Category("Sign-in codes, password resets, security alerts", transactional=True, opt_out=False),
        "account": Category("Sign-up and changes to the account", transactional=True),
        "orders": Category("Receipts, shipping and delivery", transactional=True),
        "marketing": Category("Newsletters, offers and reminders", transactional=False),
    }
)


def parse_categories(value: Any) -> Mapping[str, Category]:
    """The ``[switchboard.categories]`` table: it replaces the defaults as a whole."""
    if not isinstance(value, Mapping):
        raise ConfigurationError("switchboard.categories must be a table of [switchboard.categories.<name>] tables")
    categories: dict[str, Category] = {}
    for name, table in value.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigurationError(f"switchboard.categories: {name!r} is not a name like 'orders' or 'product-news'")
        if isinstance(table, Category):
            categories[name] = table
            continue
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"[switchboard.categories.{name}] must be a table")
        categories[name] = apply(Category(), table, "settings", table="switchboard", _path=f"categories.{name}")
    return MappingProxyType(categories)


def opt_outs(categories: Mapping[str, Category]) -> dict[str, bool]:
    """Each category and whether people may opt out of it (what ``check_change`` takes)."""
    return {name: category.opt_out for name, category in categories.items()}
