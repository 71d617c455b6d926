"""The knobs of a training run (``TrainConfig``, and each model's own section:
``TwoTowerTrainConfig``, ``RankingTrainConfig``), frozen dataclasses the assets, the sharded
launcher and ``reproduce`` build and record; ``loop`` runs them (and re-exports these names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from recassets.models.embeddings import DEFAULT_EMBEDDING_OPTIMIZER
from recassets.training.vocab import FeatureVocabConfig

# --- the run's knobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoTowerTrainConfig:
    """The two-tower's own knobs. The shape (``dim``, ``embedding_dim``, ``hidden``) applies
    from scratch only: a warm start keeps its checkpoint's. ``temperature`` scales the
    in-batch softmax on every run."""

    dim: int = 64  # D
    embedding_dim: int | None = None  # E, default D
    hidden: Sequence[int] = (128,)
    temperature: float = 0.05
    # Scale of the logQ correction (1: Yi et al.'s full correction, 0: none). Full correction
    # estimates the popularity-free softmax; w > 1 subtracts w log q, so the learned scores
    # keep (w - 1) log q of popularity prior, which real ratings reward (ML-1M Recall@50: 0.155
    # at 1, 0.192 at 3, 0.202 at 5) and the synthetic world tolerates up to 3 (0.41 at 1 and
    # 3, 0.32 at 5): docs/training-and-the-gate.md.
    logq_weight: float = 3.0
    # The user-id embedding in the user tower. On rating data with many new users a per-user
    # row memorizes the training users and is an untrained OOV row for every new one (off:
    # ML-1M Recall@50 +5 %); where users return with stable tastes it is the strongest user
    # signal (off: synthetic Recall@50 -20 %). Kept by default.
    user_id: bool = True


@dataclass(frozen=True)
class RankingTrainConfig:
    """The DCN-v2's shape, from scratch only (a warm start keeps its checkpoint's)."""

    embedding_dim: int = 16  # E
    dense_dim: int = 16  # P, the dense features' projection
    cross_layers: int = 3
    low_rank: int = 16  # r of the low-rank cross kernels
    deep: Sequence[int] = (128, 64)
    # Extra negatives per positive: the user paired with other positives' items of the batch
    # (``data.shuffled_negatives``), popularity-distributed like the retriever's candidates.
    shuffled_negatives: int = 0
    # The sequence-aware ranker: a target attention over the user's newest ``sequence``
    # engagements against the candidate (``recassets.models.sequence``); 0: the plain DCN-v2.
    sequence: int = 0
    attention_hidden: int = 32


@dataclass(frozen=True)
class TrainConfig:
    """The knobs of one training run, shared by both models; each model's own in its section.

    ``epochs``: passes over the partitions from scratch (a warm start makes one). ``vocab``:
    overrides of ``DEFAULT_VOCAB`` (from scratch; a warm start keeps its checkpoint's).
    ``embedding_optimizer`` likewise comes from the checkpoint on a warm start. ``device``:
    default CUDA when available, else CPU. ``num_threads``: torch intra-op threads for the run
    (1 on a small shared machine), restored afterwards. ``shuffle_rows``: the shuffle window.
    """

    epochs: int = 1
    batch_size: int = 1024
    lr: float = 1e-3  # dense layers, Adam
    embedding_lr: float = 0.05  # embedding rows, fused optimizer
    embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER
    seed: int = 0
    device: torch.device | str | None = None
    num_threads: int | None = None
    shuffle_rows: int = 65_536
    # Extend each training row's d-1 history with the user's positives earlier the same day
    # (``recassets.training.data.SameDayHistory``).
    same_day_history: bool = True
    vocab: Mapping[str, FeatureVocabConfig | Mapping[str, Any]] | None = None
    two_tower: TwoTowerTrainConfig = field(default_factory=TwoTowerTrainConfig)
    ranking: RankingTrainConfig = field(default_factory=RankingTrainConfig)


DEFAULT_CONFIG = TrainConfig()


__all__ = ["DEFAULT_CONFIG", "RankingTrainConfig", "TrainConfig", "TwoTowerTrainConfig"]
