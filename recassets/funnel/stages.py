"""The candidate stages: where a recommended list's items come from, before the rules.

- ``Retrieval`` (model policy): the two-tower's user tower on the user's online row (one
  row), then the FAISS index (approximate nearest neighbours) for the top n; the ranker
  (``ranking.Ranking``) orders them next.
- ``trending`` (cold start, and the backfill of any list left short of k): the catalog by
  ``rules.trending_score``, re-weighted by the cohort's taste when the cohort is known.
- ``fresh`` (the cold-start list's exploration slots): items first seen on the feature day,
  best trending first.
- ``popularity`` (popularity policy, while no model ever passed the gate): engagements in the
  trailing 7 days, or all-time (``engagements_28d``, the longest window the online store holds).

Each returns (ids, scores), best first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recassets.funnel import rules as R
from recassets.funnel.items import ItemBlock
from recassets.funnel.users import UserInputs, embedding_weights
from recassets.models.two_tower import TwoTower
from recassets.retrieval.index import ItemIndex
from recassets.training.vocab import Vocabulary

log = logging.getLogger(__name__)


class Retrieval:
    """ANN retrieval: the user tower, then the item index."""

    def __init__(
        self,
        two_tower: TwoTower,
        vocab: Vocabulary,
        index: ItemIndex,
        users: UserInputs,
        depth: int | None = None,
    ) -> None:
        if index.info.dim != two_tower.config.dim:  # every search failed in FAISS, a 500 each
            raise ValueError(
                f"the index holds {index.info.dim}-dimensional vectors and the two-tower makes "
                f"{two_tower.config.dim}: not one build's pair; rebuild the bento"
            )
        if depth is not None and index.info.nprobe is not None and depth > index.info.k:
            # an approximate index's recall was tuned and checked at info.k; deeper, it is not
            # known (0.941 at 500 for one tuned at 100): said once, at start
            log.warning(
                "serving asks the index for %d candidates; its recall was tuned and checked "
                "at %d (rebuild retrieval/item_index with k >= %d)",
                depth, index.info.k, depth,
            )  # fmt: skip
        self.two_tower, self.vocab, self.index, self.users = two_tower, vocab, index, users
        self.weights = embedding_weights(two_tower)

    def __call__(
        self, user_id: int, values: Mapping[str, Any], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the top ``n`` of the index for this user (``-1`` slots dropped)."""
        with torch.inference_mode():
            pooled, dense = self.users(user_id, values, self.vocab, self.weights)
            u = self.two_tower.user_tower(pooled, dense)  # (1, D)
        scores, pos = self.index.search(u.float().cpu().numpy(), n)
        keep = pos[0] >= 0
        return self.index.item_ids[pos[0][keep]], scores[0][keep]


def trending(
    block: ItemBlock, k: int, exclude: set[int], cohort_ctr: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The cold-start list: global trending, or with the cohort's 28-day CTR by category
    (``cohort_ctr`` (C,)) each item lifted by its category's rate relative to the cohort's
    mean (``rules.cohort_lift``)."""
    score = block.trending
    if cohort_ctr is not None:
        score = R.cohort_lift(score, cohort_ctr, block.category_code)
    return R.top_k(block.ids, score, k, exclude)


def fresh(block: ItemBlock, k: int, exclude: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """The best trending of the items first seen on the feature day."""
    return R.top_k(block.ids, np.where(block.fresh, block.trending, -np.inf), k, exclude)


def popularity(
    block: ItemBlock, variant: str, k: int, exclude: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The most engaged items: trailing 7 days, or all-time for ``variant`` "all_time"; ties
    broken by the other window's count, then the smaller id (``ItemBlock.popularity``). The
    scores returned are the variant's counts."""
    counts, key = block.popularity(variant)
    ids, _ = R.top_k(block.ids, key, k, exclude)
    pos, _ = block.positions(ids)
    return ids, counts[pos]


__all__ = ["Retrieval", "fresh", "popularity", "trending"]
