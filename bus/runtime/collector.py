"""Python's cyclic garbage collector, set for a long-running worker process.

A worker allocates a few dicts per job and frees nearly all of them by reference counting,
yet with Python's default thresholds (a collection of the youngest generation every 700 net
allocations, of the older ones every 10 of those) a switchboard worker spent about 0.1 ms of
each notification's ~1.2 ms in the collector, re-scanning objects that were about to be freed
anyway. Collecting the youngest generation every 10,000 net allocations instead makes that
about 0.01 ms: a few collections per thousand jobs. Cyclic garbage still goes, a little later;
the ``switchboard_soak`` benchmark shows the process's memory flat under it.

Set by the commands that run workers (``bus work``, ``bus driver``, ``switchboard run``);
a worker embedded in an app leaves the app's collector as the app set it.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations between collections of the youngest generation (Python's default: 700)."""
OLDER_THRESHOLDS = (20, 10)
"""Collections of a generation between collections of the next one (default: 10, 10)."""


def tune_collector() -> None:
    """Collect the young generation less often (the older ones follow from it)."""
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
