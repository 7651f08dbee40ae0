"""TemplateStore: the loaded templates folder, kept fresh, rendering on request.

Built once where the app is wired (folder path and default locale from settings) and
passed down. Each (re)load builds a new immutable state and swaps it in one assignment,
so a render never sees half a reload; only new or changed templates are re-checked,
and a change to a layout or partial re-checks them all.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from switchboard.errors import TemplateError

from .catalog import CHANNEL_FOLDERS, SHARED, build_info, layout_problems, template_keys
from .channels import MANIFEST, Channel, parse_channel
from .checking import check_shared, check_template
from .fields import validate_data
from .info import TemplateInfo
from .locales import normalize_locale
from .message import RenderedMessage
from .problems import Problem
from .rendering import render_message
from .sandbox import Environments
from .snapshot import Snapshot, changed_paths, read_text, scan

log = logging.getLogger(__name__)
_Key = tuple[Channel, str]


@dataclass(frozen=True)
class _State:
    """One consistent load of the folder: what was read, what it means, what is wrong."""

    snapshot: Snapshot
    sources: Mapping[str, str]
    unreadable: frozenset[str]
    envs: Environments
    templates: Mapping[_Key, TemplateInfo]
    shared_problems: tuple[Problem, ...]


class TemplateStore:
    """Templates under ``root`` (``<channel>/<name>/``, ``layouts/``, ``partials/``).

    Reads (``render``, ``templates``, ``get``, ``find``) re-check the folder at most every
    ``refresh_interval`` seconds, so a running worker picks up edits without a restart;
    ``refresh_interval=None`` leaves it to explicit ``refresh()`` calls.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        default_locale: str = "en",
        refresh_interval: float | None = 2.0,
        clock: Callable[[], float] = time.monotonic,
        log_problems: bool = True,
        categories: Collection[str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise TemplateError(f"templates folder {self.root} does not exist")
        self.default_locale = normalize_locale(default_locale)
        self.refresh_interval = refresh_interval
        self.log_problems = log_problems
        self.categories = frozenset(categories) if categories is not None else None
        """The settings' categories: a template naming another is a problem (None: not checked)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = clock()
        self._state = self._load(None, scan(self.root), set())

    def refresh(self) -> bool:
        """Re-scan now; reload and re-check what changed. True when anything did."""
        with self._lock:
            return self._refresh_locked()

    def render(
        self, channel: Channel | str, name: str, data: Mapping[str, object], locale: str | None = None
    ) -> RenderedMessage:
        """Render a template for ``data`` in ``locale`` (falling back ``fr_CA`` -> ``fr`` -> default).

        Data is checked against template.toml first; every failure is a TemplateError
        whose message names the template, locale, file and line.
        """
        self._maybe_refresh()
        state = self._state  # one state for the whole render, even if a reload lands meanwhile
        if (parse_channel(channel), name) not in state.templates and self.refresh():
            state = self._state  # a template added since the last look: one synchronous refresh
        info = self._lookup(state, channel, name)
        fatal = next((problem for problem in info.problems if problem.fatal), None)
        if fatal is not None:
            raise TemplateError(str(fatal))
        context = validate_data(info.fields, data, info.key)
        return render_message(state.envs, info, context, normalize_locale(locale) if locale else info.default_locale)

    def render_sample(self, channel: Channel | str, name: str, locale: str | None = None) -> RenderedMessage:
        """Render with the template's own sample data: the dashboard's default preview."""
        return self.render(channel, name, self.get(channel, name).sample, locale)

    def templates(self) -> list[TemplateInfo]:
        """Every template, sorted by channel then name, problems included."""
        self._maybe_refresh()
        return sorted(self._state.templates.values(), key=lambda info: info.key)

    def get(self, channel: Channel | str, name: str) -> TemplateInfo:
        """One template; a TemplateError suggests close names when it does not exist."""
        self._maybe_refresh()
        return self._lookup(self._state, channel, name)

    def find(self, name: str, channel: Channel | str | None = None) -> list[TemplateInfo]:
        """Templates named ``name`` (``welcome`` or ``email/welcome``) in any or one channel."""
        if "/" in name:
            channel, name = name.split("/", 1)
        wanted = None if channel is None else parse_channel(channel)
        found = [info for info in self.templates() if info.name == name and wanted in (None, info.channel)]
        if not found:
            raise self._not_found(name if wanted is None else f"{wanted.value}/{name}")
        return found

    @property
    def problems(self) -> list[Problem]:
        """Everything wrong as of the last load, one Problem per line of a report."""
        state = self._state
        found = [*state.shared_problems, *(p for info in state.templates.values() for p in info.problems)]
        return sorted(found, key=Problem.sort_key)

    def check(self) -> list[Problem]:
        """Re-scan now and report every problem: what ``switchboard templates check`` prints."""
        self.refresh()
        return self.problems

    def _maybe_refresh(self) -> None:
        due = self.refresh_interval is not None and self._clock() - self._checked_at >= self.refresh_interval
        if due and self._lock.acquire(blocking=False):  # someone else refreshing: use what is loaded
            try:
                self._refresh_locked()
            finally:
                self._lock.release()

    def _refresh_locked(self) -> bool:
        self._checked_at = self._clock()
        old = self._state
        if not self.root.is_dir():  # mid-deploy or unmounted: keep serving what was loaded
            log.warning("templates folder %s is gone; keeping the templates loaded before", self.root)
            return False
        snapshot = scan(self.root)
        changed = changed_paths(old.snapshot, snapshot, self.root, old.sources)
        if not changed:
            self._state = replace(old, snapshot=snapshot)
            return False
        self._state = self._load(old, snapshot, changed)
        return True

    def _load(self, old: _State | None, snapshot: Snapshot, changed: set[str]) -> _State:
        """Read what changed, rebuild the state, re-check the templates it affects."""
        sources = {} if old is None else {path: text for path, text in old.sources.items() if path not in changed}
        unreadable = set() if old is None else {path for path in old.unreadable if path not in changed}
        for path in snapshot.files:
            if old is None or path in changed:
                text = read_text(self.root / path)
                if text is None:
                    unreadable.add(path)
                else:
                    sources[path] = text
        envs = Environments(self.root, sources)
        everything = old is None or any(_affects_all(path) for path in changed)
        touched = {tuple(path.split("/")[:2]) for path in changed}
        templates: dict[_Key, TemplateInfo] = {}
        for key in sorted(template_keys(snapshot.files, snapshot.folders)):
            previous = None if old is None else old.templates.get(key)
            if previous is not None and not everything and (key[0].value, key[1]) not in touched:
                templates[key] = previous
            else:
                templates[key] = self._checked(envs, key, sources, unreadable)
        shared = sorted(path for path in sources if path.split("/")[0] in SHARED)
        shared_problems = [*layout_problems(snapshot.files, snapshot.folders), *check_shared(envs, shared)]
        shared_problems += [Problem(path, "cannot be read as UTF-8 text") for path in unreadable if _affects_all(path)]
        if everything and self.log_problems:
            for problem in shared_problems:
                log.warning("template problem: %s", problem)
        return _State(snapshot, sources, frozenset(unreadable), envs, templates, tuple(shared_problems))

    def _checked(self, envs: Environments, key: _Key, sources: Mapping[str, str], unreadable: set[str]) -> TemplateInfo:
        info = build_info(key[0], key[1], sources, unreadable, self.default_locale)
        problems = sorted(
            [*info.problems, *check_template(envs, info), *self._category_problems(info)], key=Problem.sort_key
        )
        for problem in problems if self.log_problems else ():
            log.warning("template problem: %s", problem)
        return replace(info, problems=tuple(problems), version=_version(info.files, sources))

    def _category_problems(self, info: TemplateInfo) -> list[Problem]:
        if self.categories is None or info.category is None or info.category in self.categories:
            return []
        known = ", ".join(sorted(self.categories)) or "none"
        message = f"category {info.category!r} is not in [switchboard.categories] ({known})"
        return [Problem(info.key, message, file=MANIFEST)]

    def _lookup(self, state: _State, channel: Channel | str, name: str) -> TemplateInfo:
        key = (parse_channel(channel), name)
        info = state.templates.get(key)
        if info is None:
            raise self._not_found(f"{key[0].value}/{name}")
        return info

    def _not_found(self, wanted: str) -> TemplateError:
        known = [info.key for info in self._state.templates.values()]
        known += [info.name for info in self._state.templates.values()]
        close = difflib.get_close_matches(wanted, known, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return TemplateError(f"no template {wanted}{hint}")


def _version(files: tuple[str, ...], sources: Mapping[str, str]) -> str:
    """A digest of a template's own files and every shared one (layouts, partials)."""
    digest = hashlib.sha256()
    for path in sorted({*files, *(p for p in sources if _affects_all(p))}):
        digest.update(path.encode() + b"\0" + sources.get(path, "").encode() + b"\0")
    return digest.hexdigest()[:12]


def _affects_all(path: str) -> bool:
    """Anything outside a channel folder (layouts, partials) can change every template."""
    return path.split("/")[0] not in CHANNEL_FOLDERS
