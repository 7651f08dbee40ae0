"""A cheap picture of the templates folder (paths, mtimes, sizes) to see what changed.

Comparing stat results misses an edit that keeps the size and lands in the same
timestamp tick as the previous scan (filesystem clocks are coarse). Like git's "racy
clean" rule, files modified shortly before a scan are also compared by content next time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

RACY_NS = 2_000_000_000  # coarser than any filesystem timestamp we expect (FAT: 2 s)


@dataclass(frozen=True)
class Snapshot:
    """Files (relative POSIX path -> (mtime_ns, size)) and folders under the root."""

    files: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    folders: frozenset[str] = frozenset()
    taken_ns: int = 0

    def racy(self) -> list[str]:
        """Files modified so close to this scan that an unseen same-size edit is possible."""
        return [path for path, (mtime, _) in self.files.items() if mtime >= self.taken_ns - RACY_NS]


def _ignored(name: str) -> bool:
    """Hidden files, editor backups and caches are never templates."""
    return name.startswith(".") or name.endswith(("~", ".swp", ".tmp")) or name == "__pycache__"


def scan(root: Path) -> Snapshot:
    """Walk the folder once; a file that vanishes mid-walk is simply left out."""
    taken_ns = time.time_ns()
    files: dict[str, tuple[int, int]] = {}
    folders: set[str] = set()
    for current, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not _ignored(name))
        base = Path(current).relative_to(root)
        folders.update((base / name).as_posix() for name in dirnames)
        for name in filenames:
            if _ignored(name):
                continue
            try:
                stat = (Path(current) / name).stat()
            except OSError:
                continue
            files[(base / name).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return Snapshot(files, frozenset(folders), taken_ns)


def changed_paths(old: Snapshot, new: Snapshot, root: Path, sources: Mapping[str, str]) -> set[str]:
    """Paths added, removed or modified between two snapshots (folders included)."""
    changed = {path for path in old.files.keys() | new.files.keys() if old.files.get(path) != new.files.get(path)}
    changed |= old.folders ^ new.folders
    for path in old.racy():
        if path not in changed and path in sources and read_text(root / path) != sources[path]:
            changed.add(path)
    return changed


def read_text(path: Path) -> str | None:
    """A file's text, or None when it cannot be read as UTF-8 right now."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
