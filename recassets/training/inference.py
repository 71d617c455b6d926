"""Inference on a trained checkpoint: rebuild its module, embed users and items, score.

What serving and offline evaluation need, and nothing of training: importing this module does
not import the training loop (``recassets.training.loop``), so a serving process loads no
optimizer, vocabulary admission or batching code it never runs (``tests/unit/training/
test_inference.py`` asserts it). The loop builds its module with ``build_model`` below: one
definition of what a checkpoint's ``config["model"]`` rebuilds, so what trains is what loads.

Shapes: B batch, N rows (items, users or candidates), D output dim of the two-tower model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import torch

from recassets.models.metrics import log_loss, roc_auc
from recassets.models.ranking import DCNv2, RankingConfig
from recassets.models.two_tower import TwoTower, TwoTowerConfig
from recassets.training import data as D
from recassets.training.checkpoint import Checkpoint, as_checkpoint
from recassets.training.examples import PathsOrTable, table_path
from recassets.training.vocab import Vocabulary

# The modules a checkpoint rebuilds; each keeps its tables in ``embeddings`` (EmbeddingTables).
RecModel: TypeAlias = TwoTower | DCNv2

# kind -> (module, its config): the checkpoint's ``kind`` and ``config["model"]`` rebuild it.
_MODELS: dict[str, tuple[type[TwoTower] | type[DCNv2], Any]] = {
    "two_tower": (TwoTower, TwoTowerConfig),
    "ranking": (DCNv2, RankingConfig),
}


def build_model(
    kind: str,
    model_config: Mapping[str, Any],
    device: torch.device,
    *,
    embedding_optimizer: str = "none",
    embedding_lr: float = 0.0,
) -> RecModel:
    """The ``kind`` module from its plain-dict config. ``embedding_optimizer="none"`` (inference):
    a plain ``EmbeddingBagCollection``; training passes its fused optimizer instead. The
    state-dict keys are the same either way, so one checkpoint loads into both."""
    if kind not in _MODELS:
        raise ValueError(f"unknown model kind {kind!r}")
    module, config = _MODELS[kind]
    return module(
        config.from_dict(model_config),
        embedding_optimizer=embedding_optimizer,
        embedding_lr=embedding_lr,
        device=device,
    )


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` as given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load(
    kind: str, checkpoint: Any, device: torch.device | str | None
) -> tuple[RecModel, Vocabulary, Checkpoint]:
    ckpt = as_checkpoint(checkpoint)
    if ckpt.kind != kind:
        raise ValueError(f"checkpoint is a {ckpt.kind} model, not {kind}")
    model = build_model(kind, ckpt.config["model"], resolve_device(device))
    model.load_state_dict(ckpt.state_dict)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, Vocabulary.from_state_dict(ckpt.vocab), ckpt


def load_two_tower(
    checkpoint: Any, *, device: torch.device | str | None = None
) -> tuple[TwoTower, Vocabulary]:
    """Rebuild the two-tower module (eval mode) and its vocabulary from a checkpoint (a path,
    a ``Checkpoint`` or its dict)."""
    model, voc, _ = _load("two_tower", checkpoint, device)
    return model, voc  # type: ignore[return-value]


def load_ranking(
    checkpoint: Any, *, device: torch.device | str | None = None
) -> tuple[DCNv2, Vocabulary]:
    """Rebuild the DCN-v2 module (eval mode) and its vocabulary from a checkpoint."""
    model, voc, _ = _load("ranking", checkpoint, device)
    return model, voc  # type: ignore[return-value]


# --- two-tower embeddings -----------------------------------------------------------------------


def _embed(
    checkpoint: Any,
    rows: Any,
    id_column: str,
    encode: Callable[[TwoTower, pa.Table | pa.RecordBatch, Vocabulary, torch.device], torch.Tensor],
    *,
    batch_size: int,
    device: torch.device | str | None,
    filter: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (N,), embeddings (N, D) float32)``: ``encode`` over ``rows`` in batches of
    ``batch_size``."""
    model, voc = load_two_tower(checkpoint, device=device)
    dev = resolve_device(device)
    ids: list[np.ndarray] = []
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for tbl in D.iter_tables(rows, batch_size=batch_size, filter=filter):
            if tbl.num_rows == 0:
                continue
            ids.append(D._column(tbl, id_column).to_numpy(zero_copy_only=False).astype(np.int64))
            out.append(encode(model, tbl, voc, dev).float().cpu().numpy())
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.config.dim), dtype=np.float32)
    return np.concatenate(ids), np.concatenate(out).astype(np.float32)


def item_embeddings(
    checkpoint: Any,
    items_table: Any,
    *,
    batch_size: int = 8192,
    device: torch.device | str | None = None,
    filter: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(item_ids (N,), embeddings (N, D) float32, unit norm)`` for the index.

    ``items_table``: a pyarrow Table / RecordBatch or a Delta table path (streamed; narrow it
    with ``filter``, e.g. ``pc.field("dt") == day``) with ``item_id``, ``category``,
    ``creator`` and the item counters, named as in ``training_examples`` (``i_age_days``) or as
    in ``item_features`` (``age_days``). Unknown items map to OOV rows, like in training.
    """

    def encode(model: TwoTower, tbl: Any, voc: Vocabulary, dev: torch.device) -> torch.Tensor:
        return model.item_embeddings(D.item_features(tbl, voc).to(dev))

    return _embed(
        checkpoint,
        items_table,
        "item_id",
        encode,
        batch_size=batch_size,
        device=device,
        filter=filter,
    )


def user_embeddings(
    checkpoint: Any,
    users_table: Any,
    *,
    batch_size: int = 8192,
    device: torch.device | str | None = None,
    filter: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(user_ids (N,), embeddings (N, D))`` from user rows (``user_id``, ``history_item_ids``,
    country, device, age_bucket, user counters; ``training_examples`` or ``user_features``
    names)."""

    def encode(model: TwoTower, tbl: Any, voc: Vocabulary, dev: torch.device) -> torch.Tensor:
        return model.user_embeddings(D.user_features(tbl, voc).to(dev))

    return _embed(
        checkpoint,
        users_table,
        "user_id",
        encode,
        batch_size=batch_size,
        device=device,
        filter=filter,
    )


# --- ranking ------------------------------------------------------------------------------------


def score_candidates(
    model: DCNv2, voc: Vocabulary, user_row: pa.Table, candidates: pa.Table
) -> np.ndarray:
    """Ranker logits (N,) of N candidate rows for one user row (serving's broadcast form)."""
    if user_row.num_rows != 1:
        raise ValueError("one user row expected")
    user = D.user_features(user_row, voc)
    items = D.item_features(candidates, voc, with_cross=bool(model.config.num_cross_dense))
    dev = next(iter(model.parameters())).device
    with torch.inference_mode():
        return model.score_candidates(user.to(dev), items.to(dev)).float().cpu().numpy()


def evaluate_ranking(
    checkpoint: Any,
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    *,
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """AUC and log loss of the ranker on ``partitions`` (held-out days) of
    ``training_examples``, streamed in batches of ``batch_size``."""
    model, voc = load_ranking(checkpoint, device=device)
    dev = resolve_device(device)
    source = D.TrainingSource.open(table_path(paths_or_table_path))
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    with torch.inference_mode():
        for day in D.normalize_partitions(partitions):
            for tbl in D.stream_batches(source, day, batch_size=batch_size):
                batch = D.to_batch(tbl, voc, record=False).to(dev)
                scores.append(model(batch.features).float().cpu().numpy())  # (B,) logits
                labels.append(batch.labels.cpu().numpy())
    if not scores:
        return {"auc": float("nan"), "logloss": float("nan"), "examples": 0}
    s, y = np.concatenate(scores), np.concatenate(labels)
    return {
        "auc": roc_auc(s, y),
        "logloss": log_loss(1 / (1 + np.exp(-s)), y),
        "examples": int(len(y)),
    }


__all__ = [
    "RecModel",
    "build_model",
    "evaluate_ranking",
    "item_embeddings",
    "load_ranking",
    "load_two_tower",
    "resolve_device",
    "score_candidates",
    "user_embeddings",
]
