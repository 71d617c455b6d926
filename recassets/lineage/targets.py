"""What ``recassets lineage`` accepts: a bento tag, a model version, ``TABLE@VERSION``,
``TABLE DAY`` or a request id of the decision log, each matched whole against a fixed pattern
or set, so nothing typed becomes a path (``graph`` walks what a ``Target`` names)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from recassets.bento.decisions import is_request_id
from recassets.lake import partition_day

# Ingest tables and the landing dataset each grows from (recassets.ingest.INGESTED_TABLES).
INGEST_TABLES = {"raw_events": "events", "users": "users", "items": "items",
                 "serving_log": "serving_log"}  # fmt: skip
FEATURE_TABLES = ("user_features", "item_features", "cohort_features")
EXAMPLES_TABLE = "training_examples"
# What `recassets lineage TABLE DAY` and `TABLE@VERSION` accept: a fixed set, never a path.
TABLES = (*sorted(INGEST_TABLES), *FEATURE_TABLES, EXAMPLES_TABLE)
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}"
_TAG = re.compile(rf"^({_NAME}):({_NAME})$")
# the .npz model stores: the asset that writes each one's files, and the metadata entry of its
# materialization that names the file (the checkpoints' is "checkpoint")
WRITTEN_BY = {"item_similarity": ("models/item_similarity", "path"),
              "cooccurrence": ("models/item_similarity", "cooccurrence"),
              "light_ranker": ("models/light_ranker", "path")}  # fmt: skip
_MODEL = re.compile(r"^(two_tower|ranking|sequence_ranking)/([0-9]{4,9})$")  # ASCII digits
_TABLE_AT = re.compile(r"^([a-z_]{1,40})@([0-9]{1,9})$")


def is_bento_tag(text: str) -> bool:
    """Whether ``text`` is a bento tag (``name:version``, names of letters, digits, ``_.-``):
    what may become a folder of the bento store."""
    return bool(_TAG.match(text))


USAGE = (
    "TARGET is a bento tag (recassets_recommender:VERSION, or latest), a model version "
    "(two_tower/0003, ranking/0002, sequence_ranking/0001), TABLE@VERSION, TABLE DAY, or a request id of the decision "
    "log (the request_id of a /recommend or /rank answer); TABLE one of " + ", ".join(TABLES)
)


class TargetError(ValueError):
    """What the user typed names no lineage target: a usage error, never a path."""


@dataclass(frozen=True)
class Target:
    kind: Literal["bento", "model", "commit", "partition", "request"]
    name: str  # the bento tag ("latest" resolved later), "two_tower/0003", the table, a request id
    version: int | None = None
    day: str | None = None


def parse_target(text: str, day: str | None = None) -> Target:
    """``text`` (and ``day``, for ``TABLE DAY``) as a ``Target``, or ``TargetError``. Every
    form is matched whole against a fixed pattern or set, so nothing typed becomes a path."""
    text = text.strip()
    shown = repr(text[:80])
    if day is not None:
        if text not in TABLES:
            raise TargetError(f"unknown table {shown}: one of {', '.join(TABLES)}")
        try:
            return Target("partition", text, day=partition_day(day.strip()))
        except ValueError as e:
            raise TargetError(str(e)) from None
    if text == "latest":
        return Target("bento", "latest")
    if m := _MODEL.match(text):
        return Target("model", text)
    if m := _TABLE_AT.match(text):
        if m.group(1) not in TABLES:
            raise TargetError(f"unknown table {m.group(1)!r}: one of {', '.join(TABLES)}")
        return Target("commit", m.group(1), version=int(m.group(2)))
    if _TAG.match(text):
        return Target("bento", text.lower())  # BentoML stores tags lower-cased
    if text in TABLES:
        raise TargetError(f"{text} needs a day (TABLE DAY) or a version (TABLE@VERSION)")
    if is_request_id(text):  # letters, digits, _ and -: never a path, a tag or a version
        return Target("request", text)
    raise TargetError(f"not a lineage target: {shown}. {USAGE}")
