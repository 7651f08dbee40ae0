"""From folder contents to TemplateInfo: what each template is made of and what is malformed.

Only the structure is judged here (file names, required parts, template.toml); whether
things render is ``checking``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType

from .channels import MANIFEST, ONE_OF, PARTS, Channel, part_files
from .info import TemplateInfo
from .locales import split_locale
from .manifest import Manifest, parse_manifest
from .problems import Problem

SHARED = ("layouts", "partials")
CHANNEL_FOLDERS = frozenset(channel.value for channel in Channel)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def template_keys(files: Iterable[str], folders: Collection[str]) -> set[tuple[Channel, str]]:
    """Every ``<channel>/<name>`` folder, even an empty one (it must not go unnoticed)."""
    keys: set[tuple[Channel, str]] = set()
    for path in [*files, *folders]:
        pieces = path.split("/")
        if len(pieces) >= 2 and pieces[0] in CHANNEL_FOLDERS and (len(pieces) > 2 or path in folders):
            keys.add((Channel(pieces[0]), pieces[1]))
    return keys


def layout_problems(files: Iterable[str], folders: Iterable[str]) -> list[Problem]:
    """Folders and files that fit nowhere: typos like ``emails/`` or a stray ``email/x.txt``."""
    problems: list[Problem] = []
    known = {*SHARED, *CHANNEL_FOLDERS}
    for folder in sorted(folders):
        if "/" not in folder and folder not in known:
            problems.append(Problem(folder, f"unknown folder (expected one of {', '.join(sorted(known))})"))
        elif folder.count("/") == 2 and folder.split("/")[0] in CHANNEL_FOLDERS:
            problems.append(Problem(folder, "unexpected folder: locale variants are files like body.fr.html"))
    for path in sorted(files):
        pieces = path.split("/")
        if len(pieces) == 2 and pieces[0] in CHANNEL_FOLDERS:
            problems.append(Problem(path, "unexpected file: templates live in <channel>/<name>/ folders"))
    return problems


def build_info(
    channel: Channel, name: str, sources: Mapping[str, str], unreadable: Iterable[str], default_locale: str
) -> TemplateInfo:
    """The TemplateInfo of one folder with its structural problems (rendering not tried yet)."""
    key = f"{channel.value}/{name}"
    prefix = f"{key}/"
    files = sorted(path for path in sources if path.startswith(prefix) and "/" not in path[len(prefix) :])
    bad = sorted(path for path in unreadable if path.startswith(prefix))
    problems = [Problem(key, "cannot be read as UTF-8 text", file=path[len(prefix) :]) for path in bad]
    if not _NAME.match(name):
        problems.append(Problem(key, "name must be lower-case letters, digits, '-' or '_'"))
    manifest, manifest_problem = _manifest(key, sources.get(prefix + MANIFEST), default_locale)
    problems += [manifest_problem] if manifest_problem else []
    tag = manifest.default_locale or default_locale
    names = [path[len(prefix) :] for path in files]
    problems += _file_problems(key, channel, names, tag)
    variants = sorted({locale for _, locale in map(split_locale, names) if locale and locale != tag})
    return TemplateInfo(
        channel=channel,
        name=name,
        description=manifest.description,
        default_locale=tag,
        locales=(tag, *variants),
        fields=manifest.fields,
        sample=manifest.sample,
        files=tuple(sorted(files + bad)),
        problems=tuple(problems),
        category=manifest.category,
        recipient_limit=manifest.recipient_limit,
        digest=manifest.digest,
    )


def _manifest(key: str, text: str | None, default_locale: str) -> tuple[Manifest, Problem | None]:
    empty = Manifest(description="", default_locale=None, fields=MappingProxyType({}), sample=MappingProxyType({}))
    if text is None:
        return empty, Problem(key, "missing (it declares description, fields, sample)", file=MANIFEST, fatal=True)
    try:
        return parse_manifest(text), None
    except ValueError as exc:
        return empty, Problem(key, str(exc), file=MANIFEST, fatal=True)


def _file_problems(key: str, channel: Channel, names: list[str], default_locale: str) -> list[Problem]:
    """Unexpected files, missing required parts, variants without a default file."""
    allowed = part_files(channel)
    problems: list[Problem] = []
    for file in names:
        base, locale = split_locale(file)
        if file == MANIFEST:
            continue
        if base not in allowed:
            problems.append(
                Problem(key, f"unexpected file (a {channel.value} template has {', '.join(allowed)})", file=file)
            )
        elif locale == default_locale:
            problems.append(Problem(key, f"same locale as the default file {base}; keep one", file=file))
        elif locale is not None and base not in names:
            problems.append(Problem(key, f"locale variant without a default {base} to fall back to", file=file))
    for part in PARTS[channel]:
        if part.required and part.file not in names:
            problems.append(Problem(key, "missing (required)", file=part.file))
    group = ONE_OF.get(channel, ())
    if group and not any(file in names for file in group):
        problems.append(Problem(key, f"needs at least one of {' or '.join(group)}"))
    return problems
