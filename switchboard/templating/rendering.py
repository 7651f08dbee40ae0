"""Rendering one template in one locale: pick the files, render each part, tidy the text."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from switchboard.errors import TemplateError

from .channels import PARTS, Part
from .info import TemplateInfo
from .locales import fallback_chain, file_locale, resolve
from .message import RenderedMessage
from .sandbox import Environments


@dataclass(frozen=True)
class Plan:
    """Which file serves each part for a requested locale, and the locale that results."""

    chain: tuple[str, ...]
    locale: str
    files: tuple[tuple[Part, str], ...]  # (part, stored path) for parts that have a file
    missing: tuple[Part, ...]  # required parts with no file at all


KEPT_PLANS = 2048
PLANS: weakref.WeakKeyDictionary[Environments, dict[tuple[str, str], Plan]] = weakref.WeakKeyDictionary()
"""Each loaded state's plans by (template, locale tag), at most KEPT_PLANS of them."""


def plan(envs: Environments, info: TemplateInfo, tag: str) -> Plan:
    """Resolve every part through ``tag``'s fallback chain (``fr_CA`` -> ``fr`` -> default); the
    files of a loaded state never change, so each answer is kept with its environments."""
    plans = PLANS.setdefault(envs, {})
    found = plans.get((info.key, tag))
    if found is None:
        found = _plan(envs, info, tag)
        if len(plans) < KEPT_PLANS:  # locales come from events: a flood of new ones is not kept
            plans[(info.key, tag)] = found
    return found


def _plan(envs: Environments, info: TemplateInfo, tag: str) -> Plan:
    chain = fallback_chain(tag)
    files: list[tuple[Part, str]] = []
    missing: list[Part] = []
    for part in PARTS[info.channel]:
        path = resolve(f"{info.key}/{part.file}", chain, envs.sources)
        if path is not None:
            files.append((part, path))
        elif part.required:
            missing.append(part)
    used = {file_locale(path) for _, path in files}
    locale = next((candidate for candidate in chain if candidate in used), info.default_locale)
    return Plan(chain, locale, tuple(files), tuple(missing))


def render_part(
    envs: Environments, info: TemplateInfo, plan: Plan, part: Part, path: str, data: Mapping[str, object]
) -> str:
    """One part as text; TemplateError gives only the reason (callers add where)."""
    context = {**data, "locale": plan.locale}
    text = envs.render(plan.chain, f"{info.key}/{part.file}", path, context).strip()
    if part.one_line:  # only line breaks go: a no-break space before "!" in French stays
        text = " ".join(line.strip(" \t") for line in text.splitlines() if line.strip(" \t"))
    if part.required and not text:
        raise TemplateError("rendered empty")
    return text


def render_message(envs: Environments, info: TemplateInfo, data: Mapping[str, object], tag: str) -> RenderedMessage:
    """All parts of a template, or a TemplateError naming template, locale and file."""
    chosen = plan(envs, info, tag)
    if chosen.missing:
        names = ", ".join(part.file for part in chosen.missing)
        raise TemplateError(f"{info.key} [{chosen.locale}]: missing {names}")
    fields: dict[str, str] = {}
    for part, path in chosen.files:
        try:
            fields[part.field] = render_part(envs, info, chosen, part, path, data)
        except TemplateError as exc:
            raise TemplateError(f"{info.key} [{chosen.locale}] {path.rpartition('/')[2]}: {exc}") from exc
    return RenderedMessage(
        channel=info.channel,
        name=info.name,
        locale=chosen.locale,
        subject=fields.get("subject"),
        text=fields.get("text"),
        html=fields.get("html"),
        title=fields.get("title"),
        body=fields.get("body"),
        version=info.version,
    )
