"""What ``recassets materialize --first X`` must ingest and build before day X: its inputs.

The feature tables of day d read ``raw_events`` of d-27..d and the ``users`` and ``items`` rows
of every day up to d, and the training examples of d the features of d-1
(``recassets.ingested`` refuses a day whose inputs are missing). Starting a long history later
(``--first X``, which the demo suggests for one over two years) therefore needs, before X:

1. the ``users`` and ``items`` days landed before X (the dimensions are cumulative: a user who
   signed up earlier would otherwise have no attributes), not yet ingested;
2. the ``raw_events`` days of the features' window before X (and before X-1 when the examples
   of X are built), not yet ingested;
3. the feature tables of X-1, when the training examples of X are built (their history).

``inputs_before`` plans those as runs ahead of the one over X..last, each only when something
is missing, so a second ``--first X`` plans nothing more. A day counts as ingested by its
lineage manifest (a ``stat``; ``recassets.ingested``'s first rule), and the features of X-1 as
built by theirs (``lineage/<table>``: ``assets.features`` writes none, so by the item features'
Delta partition folder). Ingestion runs only for the datasets the selection names: asked for
the features alone, the guard still names what to ingest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recassets.features.schema import WINDOWS
from recassets.ingest.lineage import lineage_path
from recassets.ingest.results import TABLE_NAMES
from recassets.ingested import landed
from recassets.paths import PartitionWindow, Paths

INGEST = {"events": "lake/raw_events", "users": "lake/users", "items": "lake/items"}
FEATURES = ("lake/user_features", "lake/item_features", "lake/cohort_features")
EXAMPLES = "lake/training_examples"
ONE = dt.timedelta(days=1)


def inputs_before(paths: Paths, daily: Sequence[str], first: str) -> list[dict[str, Any]]:
    """The plan entries (``recassets.cli.materialize``'s) that ingest and build what the
    daily assets ``daily`` of ``first`` on read before ``first`` (the module)."""
    x = dt.date.fromisoformat(first)
    features = [k for k in FEATURES if k in daily]
    history = bool(features) and EXAMPLES in daily  # the examples of X read the features of X-1
    derived = bool(features) or EXAMPLES in daily
    if not derived:
        return []
    start = x - ONE if history else x
    opens = PartitionWindow.from_env(paths).first  # no partition before it
    window_start = max(start - dt.timedelta(days=max(WINDOWS) - 1), opens)
    entries = []
    for dataset in ("users", "items", "events"):
        if INGEST[dataset] not in daily:
            continue
        lo = opens if dataset != "events" else window_start
        days = _not_ingested(paths, dataset, lo, x - ONE)
        if days:
            entries.append(_entry([INGEST[dataset]], days[0], days[-1]))
    if history and x - ONE >= opens and not _built(paths, x - ONE) and _landed_before(paths, x):
        entries.append(_entry(features, (x - ONE).isoformat(), (x - ONE).isoformat()))
    return _merged(entries)


def _entry(select: list[str], first: str, last: str) -> dict[str, Any]:
    return {"select": select, "first": first, "last": last}


def _merged(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The users' and items' entries as one run when they span the same days."""
    if len(entries) >= 2 and entries[0]["select"] == [INGEST["users"]]:
        a, b = entries[0], entries[1]
        if b["select"] == [INGEST["items"]] and (a["first"], a["last"]) == (b["first"], b["last"]):
            return [_entry([*a["select"], *b["select"]], a["first"], a["last"]), *entries[2:]]
    return entries


def _not_ingested(paths: Paths, dataset: str, lo: dt.date, hi: dt.date) -> list[str]:
    """The days of ``dataset`` landed in lo..hi whose ingestion left no lineage manifest,
    as ISO days."""
    out = []
    for day in paths.landed_days(dataset):
        if day < lo or day > hi or not landed(paths, dataset, day):
            continue  # nothing landed that day: nothing to ingest
        if not Path(lineage_path(paths, TABLE_NAMES[dataset], day.isoformat())).is_file():
            out.append(day.isoformat())
    return out


def _built(paths: Paths, day: dt.date) -> bool:
    """Whether the item features hold ``day`` (a partition folder with a data file)."""
    folder = Path(paths.table("item_features")) / f"dt={day.isoformat()}"
    try:
        return any(p.suffix == ".parquet" for p in folder.iterdir())
    except OSError:  # not built (or a remote lake: planned again, the run is idempotent)
        return False


def _landed_before(paths: Paths, x: dt.date) -> bool:
    return any(d < x for d in paths.landed_days("events"))
