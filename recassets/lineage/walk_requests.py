"""The walk from a served answer (``requests.find_request``) into what vouches for it: the
``serving_log`` partition it was ingested into (that day's ingest manifest and its landed
files, each with its sha256), or, not ingested yet, the landed file it was read from; then the
bento that answered, and the feature store of the day it read its online features from.

Before 2026-12-07 the answer itself was never checked: the request led straight to its bento,
so a rewritten decision log passed ``lineage REQUEST --verify`` and ``audit REQUEST`` on the
bento's files alone (review, 2026-12-07). Now:

- an answer found in the ``serving_log`` table leads to that day's partition, traced as any
  ingested partition (its commit, its manifest, its landed files; a commit outside recassets
  fails: ``changes``), and one whose day no recassets ingestion wrote fails;
- an answer found only in a landed file is said plainly as not recorded yet ("the answer's
  record is not ingested yet"), its file hashed as it is read;
- an answer served before the bento it names was built fails (no bento serves before it is);
- an answer served from online features of a later day than the bento's build (the feature
  store materialized since) leads to that day's feature store too, with the difference said.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from recassets.lineage.nodes import Artifact, Node

if TYPE_CHECKING:
    from recassets.lineage.graph import _Walker
    from recassets.lineage.requests import Found


def request(walker: _Walker, request_id: str) -> str:
    """An answer of the decision log, then what vouches for it and its bento."""
    from recassets.lineage.requests import find_request, request_node

    found = find_request(walker.paths, request_id)
    if found is None:
        raise LookupError(f"no request {request_id} in the decision log (the serving_log "
                          f"table or {walker.paths.landing}/serving_log)")  # fmt: skip
    node = request_node(found, walker.paths)
    _record(walker, node, found)
    if found.bento:
        try:
            bento = walker.bento(found.bento)
        except LookupError as e:
            node.unrecorded.append(f"the bento that answered: {e.args[0]}")
        else:
            node.inputs.append(bento)
            _served_after_build(walker.nodes[bento], node, found)
            _features_day(walker, walker.nodes[bento], node)
    return walker._add(node)


def _record(walker: _Walker, node: Node, found: Found) -> None:
    """The answer's own record: its ``serving_log`` partition, or its landed file."""
    from recassets.bento.decisions import DATASET
    from recassets.lineage.verify import sha256_or_none

    if found.file is not None:  # not ingested yet: nothing recorded vouches for it
        node.artifacts.append(Artifact(found.file, sha256_or_none(found.file),
                                       "decision log file (not ingested yet), hashed as read"))  # fmt: skip
        node.unrecorded.append(
            "the answer's record is not ingested yet: nothing recorded vouches for it (its "
            "landed file is hashed as it is read; `recassets materialize --select "
            "lake/serving_log` records it)"
        )
        return
    day = str(found.record.get("dt") or "")[:10]
    part = walker.partition(DATASET, day, None)
    node.inputs.append(part)
    if part.endswith("(no commit)"):
        node.problems.append((walker.paths.table(DATASET), "changed",
                              f"its record is in {DATASET} dt={day}, which no recassets "
                              "ingestion wrote: nothing vouches for the answer"))  # fmt: skip


def _when(text: object) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _served_after_build(bento: Node, node: Node, found: Found) -> None:
    """An answer whose ``ts`` is before the bento it names was built: no bento serves before
    it is built, so the record is not the service's (``created_at`` of its manifest, which
    ``verify`` checks against BentoML's own ``bento.yaml``)."""
    served, built = _when(found.record.get("ts")), _when(bento.facts.get("created_at"))
    if served is not None and built is not None and served < built:
        node.problems.append((found.file or found.where, "changed",
                              f"served at {found.record.get('ts')}, before the bento it names "
                              f"was built ({bento.facts.get('created_at')})"))  # fmt: skip


def _features_day(walker: _Walker, bento: Node, node: Node) -> None:
    """An answer that read the online features of another day than the bento's build (the
    feature store materialized since): that day's feature store, its difference said."""
    fday, built = node.facts.get("features_day"), bento.facts.get("features_day")
    if not isinstance(fday, str) or fday == built:
        return
    try:
        dt.date.fromisoformat(fday)
    except ValueError:
        return  # the contract check names a record that is not the service's
    node.facts["features_day_note"] = (
        f"served from the online features of {fday}, not the bento's build-day {built}: "
        "the feature store was materialized since; its day is traced too"
    )
    node.inputs.append(walker.feature_store({"online": {"day": fday}}))


__all__ = ["request"]
