"""Batch recommendations through the bento that serves: serving's funnel itself.

``recassets serve`` serves the newest completed bento of the home's Bento store
(``bento.store.latest_bento``); ``/recommend`` answers from ``funnel.recommender.Recommender``
over the bundle that bento carries and the home's online store. ``recommend_served`` calls that
same ``Recommender.recommend`` for each user, with the service's settings
(``FunnelConfig.from_mapping`` of the environment, ``RECASSETS_REDIS_URL``), so that a batch
list is the page ``/recommend`` serves for the same bento, online store and feature day (its
organic page: the ad auction runs after the funnel, in the service). Every rule is serving's:

- the case: a user the online store holds (``users.user_row``), history or none, gets the
  served policy's list (the bundle's popularity counts of its variant minus the online row's
  seen items, or the model's retrieve-and-rank / blend); a user it does not hold gets the cold
  start (trending: trend ratio x log volume, with the fresh slots);
- the rules (category cap, duplicates), the backfill from trending, the scores.

Re-implementing them from the lake gave other lists: the batch took a user without a
``training_examples`` row for cold (a user of ``u.user`` without ratings is known to the
store, and served the popularity policy) and gave every cold user the raw 7-day positives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from recassets.paths import Paths


def served_bundle(paths: Paths) -> tuple[str, Path] | None:
    """(tag, bundle folder) of the bento ``recassets serve`` serves by default (the newest
    completed one of the home's store), or None when the home holds none."""
    from recassets.bento.store import bento_folder, latest_bento

    tag = latest_bento(paths)
    if tag is None:
        return None
    folder = bento_folder(paths, tag) / "src" / "bundle"
    return (tag, folder) if (folder / "manifest.json").is_file() else None


def recommend_served(
    paths: Paths,
    bundle_dir: Path,
    users: Sequence[int],
    k: int,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int, str]:
    """Each user's page as ``/recommend`` serves it (``exclude_seen``, no cohort, no ads):
    {user: (item ids, scores)}, how many pages were backfilled from trending, and the policy
    the bundle serves. ``k`` above the service's ``max_k`` is allowed (a batch is no request;
    the page's rules scale with k as a request's do). A failing online store is an error
    here, not the service's degraded answer: every user would get everyone's trending."""
    from recassets.featurestore.config import REDIS_URL_ENV
    from recassets.funnel.bundle import Bundle
    from recassets.funnel.config import FunnelConfig
    from recassets.funnel.recommender import Recommender

    env = os.environ if env is None else env
    config = FunnelConfig.from_mapping(env)
    config = replace(config, max_k=max(config.max_k, k))
    rec = Recommender(
        Bundle.load(bundle_dir), paths, config, redis_url=env.get(REDIS_URL_ENV) or None
    )
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    filled = 0
    for u in users:
        page = rec.recommend(u, k)
        if page.degraded:
            raise RuntimeError(
                f"user {u}: {'; '.join(page.notes)}: no batch recommendations from a failing "
                "online store (every user would get everyone's trending)"
            )
        ids = np.asarray([e["item_id"] for e in page.items], dtype=np.int64)
        scores = np.asarray([e["score"] for e in page.items], dtype=np.float64)
        out[int(u)] = (ids, scores)
        filled += any("backfill" in e["stages"] for e in page.items)
    return out, filled, str(rec.policy.get("policy"))


__all__ = ["recommend_served", "served_bundle"]
