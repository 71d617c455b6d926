"""The ranking stage: the DCN-v2 ranker over one user's N candidates, in broadcast form.

A sequence-aware ranker (``RankingConfig.sequence``) also reads the user's history, encoded
once per request (``Ranking.sequence_state``) and attended by each candidate.

The user half of the ranker's input is computed once and expanded across the N candidate
rows, instead of N copies of the user's features going through the embedding lookups and
the user MLP (``Ranking.replicated``, kept for the benchmark and the equality test). The
item half comes prepared per catalog from the item block (``items.ItemBlock.prepared``), so
a request gathers N prepared rows (``DCNv2.score_prepared``). A candidate the online store
does not hold goes through the module path on default features instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.funnel.items import ItemBlock, item_kjt
from recassets.funnel.rules import UNKNOWN
from recassets.funnel.users import UserInputs, embedding_weights, user_table
from recassets.models.inputs import ModelInputs
from recassets.models.ranking import DCNv2
from recassets.models.sequence import SequenceState
from recassets.training import data as D
from recassets.training.schema import COHORT_DENSE
from recassets.training.vocab import Vocabulary


class Ranking:
    """Ranker logits of candidates for one user; ``cohort`` (C,) is the user's cohort CTR per
    category of the block (``items.Catalog.cohort_ctr``), the ranker's cross counter."""

    def __init__(
        self, ranker: DCNv2, vocab: Vocabulary, users: UserInputs, device: torch.device
    ) -> None:
        self.ranker, self.vocab, self.users, self.device = ranker, vocab, users, device
        self.weights = embedding_weights(ranker)
        # the last request's user half: (user id, its row, u, sequence state). A page's ads
        # are priced by this ranker right after the page was ranked, for the same user and the
        # very row object (``Recommendation.user_values``): the second call reuses the user
        # half instead of reading the row, looking up the embeddings and encoding the history
        # again. Matched on the row's identity (held here, so no other object can take its
        # id), never on equality: a new row is a new read, and always computed afresh.
        self._last_user: tuple[int, Mapping[str, Any], torch.Tensor, Any] | None = None
        # the last call's logits, under the same identity rule and the same item block:
        # (block, user id, row, ids sorted, their logits, found). A later call for that user,
        # row and block whose items were all scored then (the page's ads, scored with the
        # page when the service asks: ``Recommender.prescore``) is answered from it.
        self._last_scores: tuple[Any, int, Any, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(
        self,
        block: ItemBlock,
        user_id: int,
        values: Mapping[str, Any],
        item_ids: np.ndarray,
        cohort: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N,) of ``item_ids`` (broadcast form) and which items had online features
        (``found``; the others are scored on default features)."""
        again = self._scored(block, user_id, values, item_ids)
        if again is not None:
            return again
        logits, found = self._score(block, user_id, values, item_ids, cohort)
        ids = np.asarray(item_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._last_scores = (block, user_id, values, ids[order], logits[order], found[order])
        return logits, found

    def _scored(
        self, block: ItemBlock, user_id: int, values: Mapping[str, Any], item_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The last call's logits and found of ``item_ids`` when that call was for this block,
        user and row object and scored every one of them; else None."""
        last = self._last_scores
        if last is None or last[0] is not block or last[1] != user_id or last[2] is not values:
            return None
        ids = np.asarray(item_ids, dtype=np.int64)
        have = last[3]
        if not len(have):
            return None if len(ids) else (np.zeros(0, np.float32), np.zeros(0, bool))
        at = np.minimum(np.searchsorted(have, ids), len(have) - 1)
        if not (have[at] == ids).all():
            return None
        return last[4][at], last[5][at]

    def _score(
        self,
        block: ItemBlock,
        user_id: int,
        values: Mapping[str, Any],
        item_ids: np.ndarray,
        cohort: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        pos, found = block.positions(item_ids)
        with torch.inference_mode():
            u, state = self.user_half(user_id, values)
            if found.all() and block.prepared is not None:  # every candidate prepared
                cross = None
                if COHORT_DENSE:
                    c = cohort[block.category_code[pos]][:, None].astype(np.float32)
                    cross = torch.from_numpy(c).to(self.device)
                index = torch.from_numpy(pos).to(self.device)
                logits = self.ranker.score_prepared(u, block.prepared, index, cross, state)
            else:  # a feature-store miss: OOV id row, zero counters, the full item half
                items = self.candidate_features(block, pos, cohort, item_ids, found)
                v = self.ranker.item_part(items)
                seq = None
                if self.ranker.sequence is not None and state is not None:
                    rows = items.sparse.to_dict()["item_id"].values()
                    seq = self.ranker.sequence.attend(state, self.ranker.sequence.prepare(rows))
                logits = self.ranker.score_parts(u, v, seq)
            return logits.float().cpu().numpy(), found

    def user_half(
        self, user_id: int, values: Mapping[str, Any]
    ) -> tuple[torch.Tensor, SequenceState | None]:
        """The user's part of x0 (1, Xu) and the encoded history (None for the plain DCN-v2),
        once per request: the last call's, when it was for the same user and row object."""
        last = self._last_user
        if last is not None and last[0] == user_id and last[1] is values:
            return last[2], last[3]
        pooled, dense_u = self.users(user_id, values, self.vocab, self.weights)
        u = self.ranker._user_part(pooled, dense_u)  # (1, Xu)
        state = self.sequence_state(values)
        self._last_user = (user_id, values, u, state)
        return u, state

    def sequence_state(self, values: Mapping[str, Any]) -> SequenceState | None:
        """The user's engagement history (``history_item_ids``, oldest first) encoded for a
        sequence-aware ranker; None for the plain DCN-v2. Ids map as training maps them (an
        unknown id reads its OOV bucket)."""
        if self.ranker.sequence is None:
            return None
        ids = np.asarray(
            [int(i) for i in (values.get("history_item_ids") or []) if i is not None], np.int64
        )
        rows = self.vocab["item_id"].lookup(ids, record=False) if len(ids) else ids
        return self.ranker.sequence_state(
            torch.from_numpy(np.asarray(rows, np.int64)).to(self.device)
        )

    def replicated(
        self,
        block: ItemBlock,
        user_id: int,
        values: Mapping[str, Any],
        item_ids: np.ndarray,
        cohort: np.ndarray,
    ) -> np.ndarray:
        """The ranker on N rows that each repeat the user's features (no broadcast): what
        scoring costs when serving reuses the training path. Same logits as the call."""
        pos, found = block.positions(item_ids)
        n = len(item_ids)
        table = user_table(user_id, values).take(pa.array(np.zeros(n, dtype=np.int64)))
        user = D.user_features(table, self.vocab)
        items = self.candidate_features(block, pos, cohort, item_ids, found)
        merged = KeyedJaggedTensor.concat([user.sparse, items.sparse.to(torch.device("cpu"))])
        feats = ModelInputs(
            sparse=merged,
            user_dense=user.user_dense,
            item_dense=items.item_dense.cpu(),  # type: ignore[union-attr]
            cross_dense=items.cross_dense.cpu() if items.cross_dense is not None else None,
        ).to(self.device)
        with torch.inference_mode():
            return self.ranker(feats).float().cpu().numpy()

    def candidate_features(
        self,
        block: ItemBlock,
        pos: np.ndarray,
        cohort: np.ndarray,
        item_ids: np.ndarray,
        found: np.ndarray,
    ) -> ModelInputs:
        """The ranker's item-side inputs of the candidates at ``pos``. An item the online store
        does not hold (``found`` False) is read as training reads a row without features: its
        id through the vocabulary (own row or OOV bucket), no category or creator, zero
        counters, and the cohort's rate of the 'unknown' category."""
        rows = {f: block.rows[f][pos] for f in D.ITEM_FEATURES}
        dense = block.dense[pos]
        codes = block.category_code[pos]
        if not found.all():
            miss = ~found
            rows = {f: r.copy() for f, r in rows.items()}
            rows["item_id"][miss] = self.vocab["item_id"].lookup(
                item_ids[miss].astype(np.int64), record=False
            )
            for f in D.ITEM_FEATURES:
                if f != "item_id":
                    rows[f][miss] = -1
            dense = dense.copy()
            dense[miss] = 0.0
            codes = np.where(miss, block.categories.index(UNKNOWN), codes)
        cross = cohort[codes][:, None] if COHORT_DENSE else None
        return ModelInputs(
            sparse=item_kjt(rows, np.arange(len(pos))),
            item_dense=torch.from_numpy(dense),
            cross_dense=torch.from_numpy(np.ascontiguousarray(cross, dtype=np.float32))
            if cross is not None
            else None,
        ).to(self.device)


__all__ = ["Ranking"]
