"""The popularity policy's counts, frozen into a serving bundle: what the gate scored.

While nothing learned serves, the bento serves popularity, and the gate chose its variant by
the baselines it scored: positives per item (``heldout.popularity``: engagements, or ratings
at or above the threshold) over the last 7 days of ``training_examples`` (``trailing_7d``), or
over every day (``all_time``). The online store counts every engagement (ratings of any value
too) over 7 and 28 days, and no all-time count at all: served from it, the order was not the
one the gate scored, and on a history of ratings it pushed films most users rated low (an item
with one positive in 27 ratings at rank 5). The bundle carries the counts of its variant
(``popularity.npz``: item ids sorted, counts, the variant), written when the bento is built;
the automation rebuilds the bento as days land, so the week it counts is the week of the
newest examples, as the gate's baseline is refreshed each day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.paths import Paths

POPULARITY_FILE = "popularity.npz"
VARIANTS = ("trailing_7d", "all_time")


def write_counts(paths: Paths, target: Path, variant: Any) -> dict[str, Any] | None:
    """Write the ``variant``'s counts to ``target``; its lineage record (sha256, the days
    counted, the table and its version), or None without a table or a variant (the online
    counter then serves, as a bento built before 2026-12-06 does)."""
    from deltalake.exceptions import TableNotFoundError

    from recassets.lake import open_delta
    from recassets.landing import file_digest
    from recassets.training.examples import table_path
    from recassets.training.heldout import popularity, trailing_days

    if variant not in VARIANTS:
        return None
    try:
        table = open_delta(table_path(paths))
    except TableNotFoundError:
        return None
    days = sorted({p["dt"] for p in table.partitions()})
    if not days:
        return None
    if variant == "trailing_7d":  # the week up to the newest day, as the gate's baseline
        days = [d for d in trailing_days(days[-1]) if d in set(days)]
    wanted = pc.field("label") == 1
    if variant == "trailing_7d":
        wanted &= pc.field("dt").isin(pa.array([dt.date.fromisoformat(d) for d in days]))
    rows = table.to_pyarrow_dataset().to_table(columns=["item_id", "label"], filter=wanted)
    ids, counts = popularity(rows)
    order = np.argsort(ids, kind="stable")
    np.savez(target, item_ids=ids[order], counts=counts[order], variant=np.array(variant))
    return {
        "sha256": file_digest(target)[1],
        "counts": f"positives per item, {variant}",
        "variant": variant,
        "days": [days[0], days[-1]],
        "table": table_path(paths),
        "table_version": table.version(),
    }


__all__ = ["POPULARITY_FILE", "VARIANTS", "write_counts"]
