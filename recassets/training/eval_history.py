"""What the evaluation reads of ``training_examples`` before its window, one day at a time.

``evaluation.evaluate`` needs of the days before its window: what each of the window's users
has seen and engaged with, each item's row as of each eval day, and the positives its baselines
count (popularity all-time and of the trailing week, co-occurrence). It read every history
day's rows at once, and the item columns of every row ever: the reading alone grew about 50 MB
per day of 175k examples (2 days 1.0 GB, 10 days 1.5 GB; a year would have needed about 18 GB:
review, 2026-12-07). Here each history day is read alone and folded into what is kept:

- the seen and engaged items of the window's users only (no other user's is ever looked up);
- one row per item: the first row of its latest day before the window (``latest_per_day``),
  the row ``items_as_of`` picks on an eval day where the item has no row of a day of its own
  in the window (days after the window, a run trained on later days, fold apart: they are
  never "as of" an eval day, and only add their items to the catalog, as before);
- the positives as (user, item, label, dt) rows: the baselines count every one (co-occurrence
  is fitted on all of them), so these grow with the history, at 24 bytes a positive.

What the evaluation computes from these is the same as from everything read at once
(tests/unit/training/test_eval_history.py compares the reports on days whose item rows and
users' histories change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from recassets.training import data as D
from recassets.training.examples import PathsOrTable
from recassets.training.heldout import (
    ITEM_COLUMNS,
    engaged_items,
    latest_per_day,
    latest_rows,
    open_days,
    read_days,
    seen_items,
)

POSITIVE_COLUMNS = ["user_id", "item_id", "label", "dt"]


@dataclass
class History:
    """What the evaluation keeps of the days before its window (see the module docstring)."""

    seen: dict[int, set[int]]  # the window's users' items seen (``seen_items``) in the history
    engaged: dict[int, set[int]]  # their positives there (``engaged_items``)
    items: pa.Table  # item rows (``latest_per_day``'s shape) standing for every day, window too
    positives: pa.Table  # the history's positives before the window (``POSITIVE_COLUMNS``)


def read_history(
    paths: PathsOrTable,
    history_days: Sequence[str],
    window: Sequence[str],
    users: pa.Array | pa.ChunkedArray,
    seen_sources: Sequence[str],
) -> History:
    """Fold ``history_days`` one day at a time (one read each), for the users ``users`` of the
    evaluation ``window`` (its days, sorted); the window's item rows are read in one go (the
    window's rows are in memory anyway)."""
    ds = open_days(paths)
    item_cols = (*ITEM_COLUMNS, "ts")
    wanted = pc.unique(users.cast(pa.int64()))
    seen: dict[int, set[int]] = {}
    engaged: dict[int, set[int]] = {}
    positives: list[pa.Table] = []
    folded: dict[bool, pa.Table] = {}  # after the window?, its days' latest row per item
    start, end = D.as_day(window[0]), D.as_day(window[-1])
    for day in history_days:
        rows = read_days(paths, [day], (*item_cols, "user_id", "label", "source"), dataset=ds)
        mine = rows.filter(pc.is_in(rows["user_id"], wanted))
        for u, items in seen_items(mine, seen_sources).items():
            seen.setdefault(u, set()).update(items)
        for u, items in engaged_items(mine).items():
            engaged.setdefault(u, set()).update(items)
        after = D.as_day(day) > end
        if D.as_day(day) < start:  # the baselines count positives before each eval day only
            positives.append(rows.filter(pc.equal(rows["label"], 1)).select(POSITIVE_COLUMNS))
        kept = [c for c in dict.fromkeys([*item_cols, "dt"]) if c in rows.column_names]
        today = latest_per_day(rows.select(kept))
        if after in folded:  # the later day's row wins (``latest_rows``: by dt, newest first)
            today = latest_rows(pa.concat_tables([folded[after], today]), "item_id")
        folded[after] = today
    in_window = latest_per_day(read_days(paths, window, item_cols, dataset=ds))
    items = pa.concat_tables([*folded.values(), in_window], promote_options="default")
    empty = read_days(paths, [], POSITIVE_COLUMNS, dataset=ds)
    pos = pa.concat_tables([empty, *positives], promote_options="default")
    return History(seen, engaged, items, pos)
