"""Training entry points: the two-tower retriever and the DCN-v2 ranker, on ``training_examples``.

Incremental by default, the way the retraining sensor uses it: given a checkpoint, warm-start
from it and make one pass over the partitions it has not consumed yet. A first training (no
checkpoint) or ``full_retrain=True`` starts from scratch and makes ``epochs`` passes over all
given partitions. Partitions are consumed in date order; for each, on its first pass:

1. one cheap pass over its id columns counts sightings; the vocabulary admits, expires and
   recycles rows with them (``now_step`` = the day's ordinal, so ``ttl`` counts days), and the
   recycled rows are re-initialized (weights and optimizer state) before any training on them;
2. its examples stream in shuffled windows, in batches of ``batch_size`` (two-tower: positives
   only, in-batch softmax with logQ from the day's positive frequencies; ranking: all rows, BCE).

Embedding rows learn with fbgemm's fused row-wise Adagrad (``recassets.models.embeddings``),
dense layers with Adam. Runs on CUDA when available, else CPU; on CPU runs are deterministic
(fixed seeds, seeded batch order, ``torch.use_deterministic_algorithms``).

A checkpoint is a dict of tensors and primitives only (``Checkpoint.to_dict``): it loads with
``torch.load(weights_only=True)``, never unpickles code, and is written atomically.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

import recassets
from recassets import atomic
from recassets.models.embeddings import DEFAULT_EMBEDDING_OPTIMIZER, TableSpec, dense_parameters
from recassets.models.features import Features
from recassets.models.losses import PointwiseBCELoss, SampledSoftmaxLoss
from recassets.models.metrics import log_loss, roc_auc
from recassets.models.ranking import DCNv2, RankingConfig
from recassets.models.two_tower import TwoTower, TwoTowerConfig
from recassets.training import data as D
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE
from recassets.training.vocab import FeatureVocabConfig, Vocabulary

CHECKPOINT_FORMAT = 1
TRAINING_TABLE = "training_examples"

# Vocabulary sizes of the embedded default. Ids: Monolith's frequency filter (an id seen once
# is noise and memory) and a 30-day expiry; categoricals: small, stable domains, never expire.
DEFAULT_VOCAB: dict[str, FeatureVocabConfig] = {
    "user_id": FeatureVocabConfig(
        "int64", capacity=100_000, num_oov_buckets=1_000, min_count=2, ttl=30
    ),
    "item_id": FeatureVocabConfig(
        "int64", capacity=100_000, num_oov_buckets=1_000, min_count=2, ttl=30
    ),
    "country": FeatureVocabConfig("string", capacity=256, num_oov_buckets=8),
    "device": FeatureVocabConfig("string", capacity=64, num_oov_buckets=4),
    "age_bucket": FeatureVocabConfig("string", capacity=32, num_oov_buckets=2),
    "category": FeatureVocabConfig("string", capacity=1_024, num_oov_buckets=16),
    "creator": FeatureVocabConfig("string", capacity=10_000, num_oov_buckets=256, ttl=90),
}


# --- checkpoints --------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A trained model with everything needed to resume, serve and audit it.

    Layout of ``to_dict()`` (what ``torch.save`` writes):

    - ``format``, ``kind`` (``two_tower`` | ``ranking``), ``code_version``, ``created_at``
    - ``config``: ``model`` (rebuilds the module), ``train`` (knobs of the last run),
      ``vocab`` (per vocabulary: capacity, buckets, min_count, ttl)
    - ``state_dict``: the module's tensors (embedding tables at ``embeddings.ebc.embedding_bags.<t>.weight``)
    - ``optimizer``: ``embedding`` (fused row-wise Adagrad accumulators per table) and ``dense`` (Adam)
    - ``vocab``: the vocabulary state (``Vocabulary.state_dict``)
    - ``source``: ``table`` path and ``partitions``: ``{day: {"version": delta version, "rows": n}}``
      for every partition consumed so far
    - ``runs``: one record per training run (partitions, epochs, examples, loss, examples/s)
    - ``metrics``: the last run's metrics (loss, AUC for the ranker, vocabulary OOV/collision rates)
    """

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    vocab: dict[str, Any]
    source: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = recassets.__version__
    created_at: str = ""
    path: str | None = None  # where it was saved / loaded from (not saved)

    @property
    def partitions(self) -> list[str]:
        """Partitions consumed so far, sorted."""
        return sorted(self.source.get("partitions", {}))

    @property
    def versions(self) -> dict[str, int]:
        """Delta version of the training table each partition was read at."""
        return {p: int(v["version"]) for p, v in self.source.get("partitions", {}).items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "code_version": self.code_version,
            "created_at": self.created_at,
            "config": self.config,
            "state_dict": self.state_dict,
            "optimizer": self.optimizer,
            "vocab": self.vocab,
            "source": self.source,
            "runs": self.runs,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str | None = None) -> Checkpoint:
        if d.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown checkpoint format {d.get('format')!r}")
        return cls(
            kind=d["kind"],
            config=d["config"],
            state_dict=d["state_dict"],
            optimizer=d["optimizer"],
            vocab=d["vocab"],
            source=d["source"],
            runs=list(d["runs"]),
            metrics=dict(d["metrics"]),
            code_version=d["code_version"],
            created_at=d["created_at"],
            path=path,
        )

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write atomically: a temporary file in the same folder, then ``os.replace``."""
        target = atomic.write_with(path, lambda f: torch.save(self.to_dict(), f))
        self.path = str(target)
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        # weights_only: tensors and primitives only, no code is unpickled.
        return cls.from_dict(
            torch.load(path, map_location="cpu", weights_only=True), path=str(path)
        )


def as_checkpoint(
    checkpoint: Checkpoint | str | os.PathLike[str] | Mapping[str, Any],
) -> Checkpoint:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, Mapping):
        return Checkpoint.from_dict(checkpoint)
    return Checkpoint.load(checkpoint)


# --- model construction -------------------------------------------------------------------------


def table_specs(vocab: Vocabulary, embedding_dim: int) -> tuple[TableSpec, ...]:
    """One table per vocabulary, named after it, read by the features that map to it."""
    return tuple(
        TableSpec(
            name=name,
            num_embeddings=vocab[name].num_rows,
            embedding_dim=embedding_dim,
            features=tuple(f for f in D.SPARSE_FEATURES if D.FEATURE_VOCAB[f] == name),
        )
        for name in D.VOCABS
    )


def build_vocab(
    overrides: Mapping[str, FeatureVocabConfig | Mapping[str, Any]] | None = None,
) -> Vocabulary:
    configs = dict(DEFAULT_VOCAB)
    for name, cfg in (overrides or {}).items():
        if name not in configs:
            raise KeyError(f"no vocabulary {name!r} (have {sorted(configs)})")
        configs[name] = cfg if isinstance(cfg, FeatureVocabConfig) else FeatureVocabConfig(**cfg)
    return Vocabulary.from_configs(configs)


def _build_model(
    kind: str,
    model_config: Mapping[str, Any],
    embedding_optimizer: str | None,
    embedding_lr: float,
    device: torch.device,
) -> nn.Module:
    opt = embedding_optimizer or "none"
    if kind == "two_tower":
        return TwoTower(
            TwoTowerConfig.from_dict(model_config),
            embedding_optimizer=opt,
            embedding_lr=embedding_lr,
            device=device,
        )
    if kind == "ranking":
        return DCNv2(
            RankingConfig.from_dict(model_config),
            embedding_optimizer=opt,
            embedding_lr=embedding_lr,
            device=device,
        )
    raise ValueError(f"unknown model kind {kind!r}")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _table_path(paths_or_table_path: Any) -> str:
    """A ``recassets.paths.Paths`` (its ``training_examples`` table) or a table path."""
    if hasattr(paths_or_table_path, "table"):
        return paths_or_table_path.table(TRAINING_TABLE)
    return os.fspath(paths_or_table_path)


@contextlib.contextmanager
def _threads(num_threads: int | None) -> Iterator[None]:
    """Intra-op threads for the run, restored after. On a small machine shared with other jobs
    one thread beats two by an order of magnitude: OpenMP workers spin-wait at every op's barrier
    while a busy neighbour holds the other core (measured: ~1k vs 16-24k examples/s)."""
    if not num_threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _reproducible(seed: int, device: torch.device) -> Iterator[None]:
    """Seeded RNGs (forked: the caller's RNG state is left alone) and, on CPU, deterministic
    kernels (warn-only: an op without a deterministic variant warns instead of failing)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if device.type != "cpu":
            yield
            return
        prev, prev_warn = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


# --- the shared loop ----------------------------------------------------------------------------


@dataclass
class _Run:
    kind: str
    train_config: dict[str, Any]
    positives_only: bool
    columns: tuple[str, ...]  # of the training table, read by the step
    step: Callable[[nn.Module, D.Batch], tuple[torch.Tensor, torch.Tensor | None]]


_MAX_EVAL_SCORES = 2_000_000  # training AUC reads at most this many scores of the last pass


def _fit(
    run: _Run,
    table: Any,
    partitions: Sequence[dt.date | str],
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    embedding_lr: float,
    embedding_optimizer: str,
    seed: int,
    device: torch.device | str | None,
    full_retrain: bool,
    vocab: Mapping[str, Any] | None,
    shuffle_rows: int,
    storage_options: Mapping[str, str] | None,
    num_threads: int | None,
    make_model_config: Callable[[Vocabulary], dict[str, Any]],
) -> Checkpoint:
    dev = resolve_device(device)
    path = _table_path(table)
    days = D.normalize_partitions(partitions)
    prior = None if (checkpoint is None or full_retrain) else as_checkpoint(checkpoint)
    if prior is not None and prior.kind != run.kind:
        raise ValueError(f"checkpoint is a {prior.kind} model, not {run.kind}")
    todo = days if prior is None else [d for d in days if d not in set(prior.partitions)]
    if not days:
        raise ValueError("no partitions to train on")
    if prior is not None and not todo:
        # nothing new: the checkpoint is already current
        if output is not None and (
            prior.path is None or Path(prior.path).resolve() != Path(output).resolve()
        ):
            prior.save(output)
        return prior
    passes = epochs if prior is None else 1  # warm start: one pass over the new data
    if passes < 1:
        raise ValueError("epochs must be >= 1")

    source = D.TrainingSource.open(path, storage_options)
    with _threads(num_threads), _reproducible(seed, dev):
        if prior is None:
            voc = build_vocab(vocab)
            model_config = make_model_config(voc)
            emb_opt = embedding_optimizer
        else:
            voc = Vocabulary.from_state_dict(prior.vocab)
            model_config = prior.config["model"]
            emb_opt = prior.config["train"].get("embedding_optimizer", embedding_optimizer)
        model = _build_model(run.kind, model_config, emb_opt, embedding_lr, dev)
        dense_opt = torch.optim.Adam(dense_parameters(model), lr=lr)
        if prior is not None:
            model.load_state_dict(prior.state_dict)
            dense_opt.load_state_dict(prior.optimizer["dense"])
            for group in dense_opt.param_groups:
                group["lr"] = lr
            model.embeddings.load_optimizer_state_dict(prior.optimizer["embedding"])
        model.train()
        voc.reset_stats()

        with_cross = set(COHORT_DENSE) <= set(run.columns)
        consumed: dict[str, dict[str, int]] = {}
        recycled_total = 0
        t0 = time.perf_counter()
        examples = steps = 0
        last_loss_sum = 0.0
        last_examples = 0
        scores: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        n_scores = 0
        for epoch in range(passes):
            last = epoch == passes - 1
            for day in todo:
                ordinal = D.as_day(day).toordinal()
                counts = D.count_partition(source, day)
                if epoch == 0:
                    updates = voc.update(counts.ids, now_step=ordinal)
                    gen = torch.Generator().manual_seed(seed * 1_000_003 + ordinal)
                    for name, upd in updates.items():
                        model.embeddings.reinit_rows(name, upd.recycled, generator=gen)
                        recycled_total += len(upd.recycled)
                    consumed[day] = {"version": source.version, "rows": counts.rows}
                for tbl in D.stream_batches(
                    source,
                    day,
                    batch_size=batch_size,
                    columns=run.columns,
                    positives_only=run.positives_only,
                    shuffle_rows=shuffle_rows,
                    seed=[seed, epoch, ordinal],
                ):
                    if run.positives_only and tbl.num_rows < 2:
                        continue  # in-batch softmax needs negatives
                    batch = D.to_batch(
                        tbl,
                        voc,
                        item_frequency=counts.positives,
                        record=last,
                        cross=with_cross,
                    ).to(dev)
                    loss, logits = run.step(model, batch)
                    dense_opt.zero_grad(set_to_none=True)
                    model.embeddings.zero_grad()
                    loss.backward()  # the fused embedding update happens here
                    dense_opt.step()
                    model.embeddings.step()
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise FloatingPointError(f"loss is {value} at step {steps} ({day})")
                    steps += 1
                    examples += len(batch)
                    if last:
                        last_loss_sum += value * len(batch)
                        last_examples += len(batch)
                        if logits is not None and n_scores < _MAX_EVAL_SCORES:
                            scores.append(logits.detach().float().cpu().numpy())
                            labels.append(batch.labels.cpu().numpy())
                            n_scores += len(batch)
        elapsed = time.perf_counter() - t0

        metrics: dict[str, Any] = {
            "loss": last_loss_sum / last_examples if last_examples else float("nan"),
            "examples": examples,
            "steps": steps,
            "epochs": passes,
            "seconds": elapsed,
            "examples_per_s": examples / elapsed if elapsed > 0 else 0.0,
            "recycled_rows": recycled_total,
            "vocab": voc.stats(),
            "device": str(dev),
            "embedding_optimizer": model.embeddings.optimizer_kind,
        }
        if scores:
            s, y = np.concatenate(scores), np.concatenate(labels)
            metrics["train_auc"] = roc_auc(s, y)
            metrics["train_logloss"] = log_loss(1 / (1 + np.exp(-s)), y)

        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        optimizer = {
            "embedding": model.embeddings.optimizer_state_dict(),
            "dense": _cpu(dense_opt.state_dict()),
        }
    partitions_done = dict(prior.source["partitions"]) if prior is not None else {}
    partitions_done.update(consumed)
    run_record = {
        "partitions": list(todo),
        "table_version": source.version,
        "warm_start": prior is not None,
        "full_retrain": bool(full_retrain),
        **{
            k: metrics[k]
            for k in ("epochs", "examples", "steps", "loss", "seconds", "examples_per_s")
        },
    }
    ckpt = Checkpoint(
        kind=run.kind,
        config={
            "model": model_config,
            "train": {
                **run.train_config,
                "batch_size": batch_size,
                "lr": lr,
                "embedding_lr": embedding_lr,
                "embedding_optimizer": model.embeddings.optimizer_kind,
                "seed": seed,
                "shuffle_rows": shuffle_rows,
            },
            "vocab": {name: cfg.to_dict() for name, cfg in voc.configs().items()},
        },
        state_dict=state,
        optimizer=optimizer,
        vocab=voc.state_dict(),
        source={"table": path, "partitions": partitions_done},
        runs=(list(prior.runs) if prior is not None else []) + [run_record],
        metrics=metrics,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    if output is not None:
        ckpt.save(output)
    return ckpt


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj


# --- two-tower ----------------------------------------------------------------------------------


def train_two_tower(
    paths_or_table_path: Any,
    partitions: Sequence[dt.date | str],
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    epochs: int = 1,
    batch_size: int = 1024,
    lr: float = 1e-3,
    embedding_lr: float = 0.05,
    embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER,
    dim: int = 64,
    embedding_dim: int | None = None,
    hidden: Sequence[int] = (128,),
    temperature: float = 0.05,
    seed: int = 0,
    device: torch.device | str | None = None,
    full_retrain: bool = False,
    vocab: Mapping[str, FeatureVocabConfig | Mapping[str, Any]] | None = None,
    shuffle_rows: int = 65_536,
    storage_options: Mapping[str, str] | None = None,
    num_threads: int | None = None,
) -> Checkpoint:
    """Train the two-tower retriever on ``partitions`` of ``training_examples`` (positives).

    ``checkpoint``: warm start, one pass over the partitions it has not consumed (returned
    unchanged when there are none); model shape, vocabulary and embedding optimizer come from
    it. Without one (or with ``full_retrain``): from scratch, ``epochs`` passes; ``dim`` (D),
    ``embedding_dim`` (E, default D), ``hidden`` and ``vocab`` (overrides of ``DEFAULT_VOCAB``)
    shape the model. ``output``: where to save the checkpoint (atomically). ``num_threads``:
    torch intra-op threads for the run (1 on a small shared machine), restored afterwards.
    """
    loss_fn = SampledSoftmaxLoss(temperature)

    def step(model: nn.Module, batch: D.Batch) -> tuple[torch.Tensor, None]:
        user, item = model(batch.features)
        return loss_fn(user, item, batch.item_log_q, batch.item_ids), None

    def model_config(voc: Vocabulary) -> dict[str, Any]:
        return TwoTowerConfig(
            tables=table_specs(voc, embedding_dim or dim),
            user_features=D.USER_FEATURES,
            item_features=D.ITEM_FEATURES,
            num_user_dense=len(USER_DENSE),
            num_item_dense=len(ITEM_DENSE),
            dim=dim,
            hidden=tuple(hidden),
        ).to_dict()

    run = _Run(
        "two_tower",
        {"temperature": temperature},
        positives_only=True,
        columns=D.TWO_TOWER_COLUMNS,
        step=step,
    )
    return _fit(
        run, paths_or_table_path, partitions, checkpoint=checkpoint, output=output, epochs=epochs,
        batch_size=batch_size, lr=lr, embedding_lr=embedding_lr, embedding_optimizer=embedding_optimizer,
        seed=seed, device=device, full_retrain=full_retrain, vocab=vocab, shuffle_rows=shuffle_rows,
        storage_options=storage_options, num_threads=num_threads, make_model_config=model_config,
    )  # fmt: skip


# --- ranking ------------------------------------------------------------------------------------


def train_ranking(
    paths_or_table_path: Any,
    partitions: Sequence[dt.date | str],
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    epochs: int = 1,
    batch_size: int = 1024,
    lr: float = 1e-3,
    embedding_lr: float = 0.05,
    embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER,
    embedding_dim: int = 16,
    dense_dim: int = 16,
    cross_layers: int = 3,
    low_rank: int = 16,
    deep: Sequence[int] = (128, 64),
    seed: int = 0,
    device: torch.device | str | None = None,
    full_retrain: bool = False,
    vocab: Mapping[str, FeatureVocabConfig | Mapping[str, Any]] | None = None,
    shuffle_rows: int = 65_536,
    storage_options: Mapping[str, str] | None = None,
    num_threads: int | None = None,
) -> Checkpoint:
    """Train the DCN-v2 ranker on all rows (labels 0/1) of ``partitions``, BCE loss.

    Same incremental contract as ``train_two_tower``. Metrics include the AUC and log loss of
    the last pass's training predictions (at most 2M of them).
    """
    loss_fn = PointwiseBCELoss()

    def step(model: nn.Module, batch: D.Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch.features)
        return loss_fn(logits, batch.labels), logits

    def model_config(voc: Vocabulary) -> dict[str, Any]:
        return RankingConfig(
            tables=table_specs(voc, embedding_dim),
            user_features=D.USER_FEATURES,
            item_features=D.ITEM_FEATURES,
            num_user_dense=len(USER_DENSE),
            num_item_dense=len(ITEM_DENSE),
            num_cross_dense=len(COHORT_DENSE),
            dense_dim=dense_dim,
            cross_layers=cross_layers,
            low_rank=low_rank,
            deep=tuple(deep),
        ).to_dict()

    run = _Run("ranking", {}, positives_only=False, columns=D.TRAINING_COLUMNS, step=step)
    return _fit(
        run, paths_or_table_path, partitions, checkpoint=checkpoint, output=output, epochs=epochs,
        batch_size=batch_size, lr=lr, embedding_lr=embedding_lr, embedding_optimizer=embedding_optimizer,
        seed=seed, device=device, full_retrain=full_retrain, vocab=vocab, shuffle_rows=shuffle_rows,
        storage_options=storage_options, num_threads=num_threads, make_model_config=model_config,
    )  # fmt: skip


# --- loading and serving ------------------------------------------------------------------------


def _load(
    kind: str, checkpoint: Any, device: torch.device | str | None
) -> tuple[nn.Module, Vocabulary, Checkpoint]:
    ckpt = as_checkpoint(checkpoint)
    if ckpt.kind != kind:
        raise ValueError(f"checkpoint is a {ckpt.kind} model, not {kind}")
    dev = resolve_device(device)
    # Inference only: a plain EmbeddingBagCollection, no optimizer (state-dict keys are shared).
    model = _build_model(kind, ckpt.config["model"], None, 0.0, dev)
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


def _embed(
    kind: str,
    checkpoint: Any,
    rows: Any,
    id_column: str,
    encode: Callable[
        [nn.Module, pa.Table | pa.RecordBatch, Vocabulary, torch.device], torch.Tensor
    ],
    *,
    batch_size: int,
    device: torch.device | str | None,
    filter: Any,
) -> tuple[np.ndarray, np.ndarray]:
    model, voc, ckpt = _load(kind, checkpoint, device)
    dev = resolve_device(device)
    ids: list[np.ndarray] = []
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for tbl in D.iter_tables(rows, batch_size=batch_size, filter=filter):
            if tbl.num_rows == 0:
                continue
            ids.append(D._column(tbl, id_column).to_numpy(zero_copy_only=False).astype(np.int64))
            out.append(encode(model, tbl, voc, dev).float().cpu().numpy())
    dim = int(ckpt.config["model"]["dim"])
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
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

    def encode(model: nn.Module, tbl: Any, voc: Vocabulary, dev: torch.device) -> torch.Tensor:
        return model.item_embeddings(D.item_features(tbl, voc).to(dev))

    return _embed(
        "two_tower",
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

    def encode(model: nn.Module, tbl: Any, voc: Vocabulary, dev: torch.device) -> torch.Tensor:
        return model.user_embeddings(D.user_features(tbl, voc).to(dev))

    return _embed(
        "two_tower",
        checkpoint,
        users_table,
        "user_id",
        encode,
        batch_size=batch_size,
        device=device,
        filter=filter,
    )


def evaluate_ranking(
    checkpoint: Any,
    paths_or_table_path: Any,
    partitions: Sequence[dt.date | str],
    *,
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """AUC and log loss of the ranker on ``partitions`` (held-out days), streamed."""
    model, voc, _ = _load("ranking", checkpoint, device)
    dev = resolve_device(device)
    source = D.TrainingSource.open(_table_path(paths_or_table_path))
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    with torch.inference_mode():
        for day in D.normalize_partitions(partitions):
            for tbl in D.stream_batches(source, day, batch_size=batch_size):
                batch = D.to_batch(tbl, voc, record=False).to(dev)
                scores.append(model(batch.features).float().cpu().numpy())
                labels.append(batch.labels.cpu().numpy())
    if not scores:
        return {"auc": float("nan"), "logloss": float("nan"), "examples": 0}
    s, y = np.concatenate(scores), np.concatenate(labels)
    return {
        "auc": roc_auc(s, y),
        "logloss": log_loss(1 / (1 + np.exp(-s)), y),
        "examples": int(len(y)),
    }


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


__all__ = [
    "DEFAULT_VOCAB",
    "Checkpoint",
    "Features",
    "as_checkpoint",
    "build_vocab",
    "evaluate_ranking",
    "item_embeddings",
    "load_ranking",
    "load_two_tower",
    "resolve_device",
    "score_candidates",
    "train_ranking",
    "train_two_tower",
    "user_embeddings",
]
