"""Training/serving skew: what the online store serves against the lake's rows of the day.

Split from ``store.py`` (re-exported there); Feast is imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from recassets.featurestore import config as cfg
from recassets.featurestore import upkeep, wire
from recassets.featurestore.snapshot import end_of_day, join_key, offline_rows
from recassets.paths import Paths

# The feature name of a Mismatch for an entity the store serves but the day does not hold.
ABSENT_FROM_DAY = "(entity absent from the day)"


@dataclass(frozen=True)
class Mismatch:
    view: str
    key: Any
    feature: str
    offline: Any
    online: Any


@dataclass
class SkewReport:
    day: str
    online_store: str
    checked: dict[str, int] = field(default_factory=dict)  # view -> entities compared
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checked) and not self.mismatches

    def mismatched_entities(self) -> dict[str, int]:
        out: dict[str, set] = {}
        for m in self.mismatches:
            out.setdefault(m.view, set()).add(m.key)
        return {v: len(k) for v, k in out.items()}

    def markdown(self, limit: int = 20) -> str:
        if not self.mismatches:
            return "(no mismatch)"
        lines = ["| view | key | feature | offline | online |", "| --- | --- | --- | --- | --- |"]
        for m in self.mismatches[:limit]:
            lines.append(
                f"| {m.view} | {m.key} | {m.feature} | {_short(m.offline)} | {_short(m.online)} |"
            )
        if len(self.mismatches) > limit:
            lines.append(f"| ... {len(self.mismatches) - limit} more | | | | |")
        return "\n".join(lines)


def skew_check(
    paths: Paths,
    day: dt.date | str,
    sample: int = 100,
    seed: int = 0,
    redis_url: str | None = None,
) -> SkewReport:
    """Training/serving skew: for up to ``sample`` entities per view (drawn with ``seed``),
    the values Feast serves online must equal, value for value, the rows of ``day`` read
    straight from Delta (after the snapshot's flattening), and carry that day's event time.

    Floats are compared exactly (NaN equals NaN): the online store must hold the same bits.
    An entity missing online shows as a mismatch on every feature; every entity the store
    holds but the day does not shows as one ``ABSENT_FROM_DAY`` mismatch (all of them, not a
    sample: the store's keys are listed, not its values).
    """
    from recassets.featurestore import store

    iso = day if isinstance(day, str) else day.isoformat()
    settings = cfg.online_store_settings(paths, redis_url)
    expected_ts = int(end_of_day(iso).timestamp())  # the stores keep whole seconds
    report = SkewReport(day=iso, online_store=settings.describe())
    for entity, (table, view) in store.ENTITY_VIEWS.items():
        rows = offline_rows(paths, table, iso)
        key = join_key(table)
        keys = rows.column(key).to_pylist()
        chosen = sorted(
            random.Random(f"{seed}:{view}").sample(range(len(keys)), min(sample, len(keys)))
        )
        picked = rows.take(chosen)
        refs = store.feature_refs(entity)
        with store._named_errors(paths, redis_url):
            online = (
                store._fresh_store(paths, redis_url)
                .get_online_features(
                    features=refs, entity_rows=[{key: k} for k in picked.column(key).to_pylist()]
                )
                .to_dict(include_event_timestamps=True)
            )
        offline = picked.to_pydict()
        for i, k in enumerate(offline[key]):
            for ref in refs:
                name = ref.split(":", 1)[1]
                if not same_value(offline[name][i], online[name][i]):
                    report.mismatches.append(
                        Mismatch(view, k, name, offline[name][i], online[name][i])
                    )
            stamps = {online[f"{r.split(':', 1)[1]}__ts"][i] for r in refs}
            if stamps != {expected_ts}:
                report.mismatches.append(
                    Mismatch(view, k, "event_timestamp", expected_ts, sorted(stamps))
                )
        report.checked[view] = len(chosen)
        # The other way: every entity served online must be one of the day's. Feast only
        # upserts, so an entity of an earlier day (an item withdrawn) was still served, and
        # a check that drew its sample from the lake could not see it.
        day_keys = {wire.serialize_entity_key(key, k) for k in keys}
        spec = next(v for v in store._views() if v[0] == view)
        for extra in sorted(upkeep.online_keys(settings, cfg.PROJECT, spec) - day_keys):
            parsed = wire.parse_entity_key(extra, key)
            value = parsed[0] if parsed else extra
            report.mismatches.append(Mismatch(view, value, ABSENT_FROM_DAY, None, "served"))
    return report


def same_value(a: Any, b: Any) -> bool:
    """Exact equality where NaN equals NaN, through lists (and numpy arrays)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    a, b = _tolist(a), _tolist(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _tolist(value: Any) -> Any:
    """A numpy array or scalar (anything with ``tolist``) as plain Python, other values as is."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return value.tolist()
    return value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
