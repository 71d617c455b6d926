"""The training loop: the two-tower retriever and the DCN-v2 ranker, on ``training_examples``.

Owns everything that only training needs: the run's knobs (``TrainConfig``), the vocabulary
and embedding-table layout of a model trained from scratch, and the loop itself. Checkpoints are
read and written through ``recassets.training.checkpoint``; the module is built with
``recassets.training.inference.build_model``, the same definition inference loads it with.
Inference and serving never import this module.

Incremental by default, the way the retraining sensor uses it: given a checkpoint, warm-start
from it and make one pass over the partitions it has not consumed yet. A first training (no
checkpoint) or ``full_retrain=True`` starts from scratch and makes ``config.epochs`` passes over
all given partitions. Partitions are consumed in date order; for each, on its first pass:

1. one cheap pass over its id columns counts sightings; the vocabulary admits, expires and
   recycles rows with them (``now_step`` = the day's ordinal, so ``ttl`` counts days), and the
   recycled rows are re-initialized (weights and optimizer state) before any training on them;
2. its examples stream in shuffled windows, in batches of ``batch_size`` (two-tower: positives
   only, in-batch softmax with logQ from the day's positive frequencies; ranking: all rows, BCE).

The two models share all of it; they differ only in a ``_Run`` (which rows, which columns, the
loss step, the model config of a first training).

Embedding rows learn with fbgemm's fused row-wise Adagrad (``recassets.models.embeddings``),
dense layers with Adam. Runs on CUDA when available, else CPU; on CPU runs are deterministic
(fixed seeds, seeded batch order, ``torch.use_deterministic_algorithms``).

Shapes: B batch; D two-tower output dim; E embedding dim of a table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recassets.models.embeddings import TableSpec, dense_optimizer, dense_parameters
from recassets.models.losses import PointwiseBCELoss, SampledSoftmaxLoss
from recassets.models.metrics import log_loss, roc_auc
from recassets.models.ranking import CANDIDATE_FEATURE, RankingConfig
from recassets.models.sequence import TargetAttention
from recassets.models.two_tower import TwoTowerConfig
from recassets.training import data as D
from recassets.training.checkpoint import Checkpoint, as_checkpoint, record_run
from recassets.training.day_reads import DayReads
from recassets.training.examples import PathsOrTable, table_path
from recassets.training.inference import RecModel, build_model, resolve_device
from recassets.training.progress import Progress
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE
from recassets.training.train_config import (
    DEFAULT_CONFIG,
    RankingTrainConfig,
    TrainConfig,
    TwoTowerTrainConfig,
)
from recassets.training.vocab import FeatureVocabConfig, Vocabulary

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


# --- vocabulary and tables of a first training --------------------------------------------------


def build_vocab(
    overrides: Mapping[str, FeatureVocabConfig | Mapping[str, Any]] | None = None,
) -> Vocabulary:
    """``DEFAULT_VOCAB`` with ``overrides`` (whole vocabularies, by name) applied."""
    configs = dict(DEFAULT_VOCAB)
    for name, cfg in (overrides or {}).items():
        if name not in configs:
            raise KeyError(f"no vocabulary {name!r} (have {sorted(configs)})")
        configs[name] = cfg if isinstance(cfg, FeatureVocabConfig) else FeatureVocabConfig(**cfg)
    return Vocabulary.from_configs(configs)


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


# --- what differs between the two models --------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    kind: str
    train_config: dict[str, Any]  # the model's own knobs, recorded in the checkpoint
    positives_only: bool
    columns: tuple[str, ...]  # of the training table, read by the step
    # (loss, (B,) logits or None): the logits feed the training AUC
    step: Callable[[nn.Module, D.Batch], tuple[torch.Tensor, torch.Tensor | None]]
    model_config: Callable[[Vocabulary], dict[str, Any]]  # of a first training


def _two_tower_run(knobs: TwoTowerTrainConfig) -> _Run:
    """Positives only, in-batch sampled softmax with logQ correction (Yi et al. 2019)."""
    loss_fn = SampledSoftmaxLoss(knobs.temperature)
    w = float(knobs.logq_weight)

    def step(model: nn.Module, batch: D.Batch) -> tuple[torch.Tensor, None]:
        user, item = model(batch.features)  # (B, D) each
        log_q = None if batch.item_log_q is None or w == 0 else batch.item_log_q * w
        return loss_fn(user, item, log_q, batch.item_ids), None

    def model_config(voc: Vocabulary) -> dict[str, Any]:
        return TwoTowerConfig(
            tables=table_specs(voc, knobs.embedding_dim or knobs.dim),
            user_features=tuple(f for f in D.USER_FEATURES if knobs.user_id or f != "user_id"),
            item_features=D.ITEM_FEATURES,
            num_user_dense=len(USER_DENSE),
            num_item_dense=len(ITEM_DENSE),
            dim=knobs.dim,
            hidden=tuple(knobs.hidden),
        ).to_dict()

    return _Run(
        "two_tower",
        {"temperature": knobs.temperature, "logq_weight": w, "user_id": knobs.user_id},
        positives_only=True,
        columns=D.TWO_TOWER_COLUMNS,
        step=step,
        model_config=model_config,
    )


def _ranking_run(knobs: RankingTrainConfig) -> _Run:
    """All rows (labels 0/1), pointwise BCE."""
    loss_fn = PointwiseBCELoss()

    def step(model: nn.Module, batch: D.Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch.features)  # (B,)
        return loss_fn(logits, batch.labels), logits

    def model_config(voc: Vocabulary) -> dict[str, Any]:
        return RankingConfig(
            tables=table_specs(voc, knobs.embedding_dim),
            user_features=D.USER_FEATURES,
            item_features=D.ITEM_FEATURES,
            num_user_dense=len(USER_DENSE),
            num_item_dense=len(ITEM_DENSE),
            num_cross_dense=len(COHORT_DENSE),
            dense_dim=knobs.dense_dim,
            cross_layers=knobs.cross_layers,
            low_rank=knobs.low_rank,
            deep=tuple(knobs.deep),
            sequence=knobs.sequence,
            attention_hidden=knobs.attention_hidden,
        ).to_dict()

    return _Run(
        "ranking",
        {"shuffled_negatives": knobs.shuffled_negatives},
        positives_only=False,
        columns=D.TRAINING_COLUMNS,
        step=step,
        model_config=model_config,
    )


_RUNS: dict[str, Callable[[TrainConfig], _Run]] = {
    "two_tower": lambda config: _two_tower_run(config.two_tower),
    "ranking": lambda config: _ranking_run(config.ranking),
}


# --- the run's environment ----------------------------------------------------------------------


@contextlib.contextmanager
def _threads(num_threads: int | None) -> Generator[None, None, None]:
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
def _reproducible(seed: int, device: torch.device) -> Generator[None, None, None]:
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


_MAX_EVAL_SCORES = 2_000_000  # training AUC reads at most this many scores of the last pass


def _start(
    run: _Run, config: TrainConfig, prior: Checkpoint | None, device: torch.device
) -> tuple[Vocabulary, dict[str, Any], RecModel, torch.optim.Optimizer]:
    """Vocabulary, model config, module and dense optimizer: fresh, or restored from ``prior``
    (its vocabulary, shape and embedding optimizer; this run's learning rates)."""
    if prior is None:
        voc = build_vocab(config.vocab)
        model_config = run.model_config(voc)
        emb_opt = config.embedding_optimizer
    else:
        voc = Vocabulary.from_state_dict(prior.vocab)
        model_config = prior.config["model"]
        emb_opt = prior.config["train"].get("embedding_optimizer", config.embedding_optimizer)
    model = build_model(
        run.kind,
        model_config,
        device,
        embedding_optimizer=emb_opt,
        embedding_lr=config.embedding_lr,
    )
    if prior is not None:
        model.load_state_dict(prior.state_dict)
    state = prior.optimizer["dense"] if prior is not None else None
    dense_opt = dense_optimizer(dense_parameters(model), config.lr, state)
    if prior is not None:
        model.embeddings.load_optimizer_state_dict(prior.optimizer["embedding"])
    return voc, model_config, model, dense_opt


def _fit(
    run: _Run,
    table: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig,
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    full_retrain: bool,
    storage_options: Mapping[str, str] | None,
    version: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Checkpoint:
    dev = resolve_device(config.device)
    path = table_path(table)
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
    passes = config.epochs if prior is None else 1  # warm start: one pass over the new data
    if passes < 1:
        raise ValueError("epochs must be >= 1")

    source = D.TrainingSource.open(path, storage_options, version)
    with _threads(config.num_threads), _reproducible(config.seed, dev):
        voc, model_config, model, dense_opt = _start(run, config, prior, dev)
        model.train()
        voc.reset_stats()

        with_cross = set(COHORT_DENSE) <= set(run.columns)
        consumed: dict[str, dict[str, int]] = {}
        recycled_total = 0
        t0 = time.perf_counter()
        examples = steps = 0
        last_loss_sum = 0.0
        last_examples = last_positives = 0
        scores: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        n_scores = 0
        gen_neg = np.random.default_rng(config.seed)
        reads = DayReads(source, config.same_day_history, keep=passes > 1)
        said = Progress(progress, run.kind)
        start = "from scratch" if prior is None else "warm start"
        said.say(f"{start}, {passes} pass(es) over {len(todo)} day(s) {todo[0]}..{todo[-1]}")
        for epoch in range(passes):
            last = epoch == passes - 1
            pass_examples = examples
            for n_day, day in enumerate(todo, start=1):
                ordinal = D.as_day(day).toordinal()
                counts = reads.counts(day)
                if epoch == 0:
                    updates = voc.update(counts.ids, now_step=ordinal)
                    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + ordinal)
                    for name, upd in updates.items():
                        model.embeddings.reinit_rows(name, upd.recycled, generator=gen)
                        reinit_sequence_rows(model, name, upd.recycled, gen, dense_opt)
                        recycled_total += len(upd.recycled)
                    consumed[day] = {"version": source.version, "rows": counts.rows}
                same_day = reads.history(day)
                columns = (*run.columns, "ts") if same_day is not None else run.columns
                for tbl in D.stream_batches(
                    source,
                    day,
                    batch_size=config.batch_size,
                    columns=columns,
                    positives_only=run.positives_only,
                    shuffle_rows=config.shuffle_rows,
                    seed=[config.seed, epoch, ordinal],
                    batches=reads.batches(day, config.batch_size, columns, run.positives_only),
                ):
                    if run.positives_only and tbl.num_rows < 2:
                        continue  # in-batch softmax needs negatives
                    if same_day is not None:
                        tbl = same_day.apply(tbl)
                    if run.kind == "ranking" and config.ranking.shuffled_negatives:
                        tbl = D.shuffled_negatives(tbl, config.ranking.shuffled_negatives, gen_neg)
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
                    if said.due():  # a long pass says it is alive, at most every 30 s
                        said.say(f"pass {epoch + 1} of {passes}, day {day} ({n_day} of "
                                 f"{len(todo)}), {examples - pass_examples:,} examples")  # fmt: skip
                    if last:
                        last_loss_sum += value * len(batch)
                        last_examples += len(batch)
                        last_positives += int((batch.labels > 0.5).sum())
                        if logits is not None and n_scores < _MAX_EVAL_SCORES:
                            scores.append(logits.detach().float().cpu().numpy())
                            labels.append(batch.labels.cpu().numpy())
                            n_scores += len(batch)
            said.say(f"pass {epoch + 1} of {passes} done: {examples - pass_examples:,} "
                     f"examples of {len(todo)} day(s), {steps:,} steps in all")  # fmt: skip
        elapsed = time.perf_counter() - t0

        metrics: dict[str, Any] = {
            "loss": last_loss_sum / last_examples if last_examples else float("nan"),
            "examples": examples,
            "steps": steps,
            "epochs": passes,
            "seconds": elapsed,
            "examples_per_s": examples / elapsed if elapsed > 0 else 0.0,
            "train_positives": last_positives,  # of the last pass's rows
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
    ckpt = record_run(
        run.kind,
        model_config=model_config,
        train=train_record(run.train_config, config, model.embeddings.optimizer_kind),
        vocab_configs=voc.configs(),
        vocab_state=voc.state_dict(),
        state=state,
        optimizer=optimizer,
        prior=prior,
        table=path,
        todo=todo,
        consumed=consumed,
        version=source.version,
        full_retrain=full_retrain,
        metrics=metrics,
    )
    if output is not None:
        ckpt.save(output)
    return ckpt


def reinit_sequence_rows(
    model: nn.Module,
    vocab: str,
    rows: Any,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Recycled ``item_id`` rows start afresh in the sequence-aware ranker's own item table too
    (``TargetAttention.reinit_rows``; found through any wrapper, a sharded model's included)."""
    if vocab != CANDIDATE_FEATURE:
        return
    for m in model.modules():
        if isinstance(m, TargetAttention):
            m.reinit_rows(rows, generator=generator, optimizer=optimizer)


def train_record(
    run_config: Mapping[str, Any], config: TrainConfig, embedding_optimizer: str
) -> dict[str, Any]:
    """The knobs a checkpoint records of its last run (``config.train``): the model's own,
    then the shared ones (what ``reproduce.config_of`` reads back)."""
    return {
        **run_config,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "embedding_lr": config.embedding_lr,
        "embedding_optimizer": embedding_optimizer,
        "seed": config.seed,
        "shuffle_rows": config.shuffle_rows,
        "same_day_history": config.same_day_history,
    }


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj


# --- entry points -------------------------------------------------------------------------------


def train(
    kind: str,
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Checkpoint:
    """Train the ``kind`` model (``two_tower`` | ``ranking``) on ``partitions`` of
    ``training_examples`` (a ``Paths`` or the table's path).

    ``checkpoint``: warm start, one pass over the partitions it has not consumed (returned
    unchanged when there are none); model shape, vocabulary and embedding optimizer come from
    it. Without one (or with ``full_retrain``): from scratch, ``config.epochs`` passes, shaped by
    ``config.vocab`` and the model's section of ``config``. ``output``: where to save the
    checkpoint (atomically). ``storage_options``: for a remote Delta table. ``version``: read
    the table as of that Delta version (``recassets.training.reproduce``), default the latest.
    ``progress``: where to say how far it is (``recassets.training.progress``: a line when it
    starts and when each pass ends, and within a pass at most one every 30 s).
    """
    if kind not in _RUNS:
        raise ValueError(f"unknown model kind {kind!r}")
    return _fit(
        _RUNS[kind](config),
        paths_or_table_path,
        partitions,
        config,
        checkpoint=checkpoint,
        output=output,
        full_retrain=full_retrain,
        storage_options=storage_options,
        version=version,
        progress=progress,
    )


def train_two_tower(
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Checkpoint:
    """``train("two_tower", ...)``: the retriever, on the positives of ``partitions``."""
    return train(
        "two_tower", paths_or_table_path, partitions, config, checkpoint=checkpoint,
        output=output, full_retrain=full_retrain, storage_options=storage_options,
        progress=progress,
    )  # fmt: skip


def train_ranking(
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Checkpoint:
    """``train("ranking", ...)``: the DCN-v2 ranker, on all rows of ``partitions``. Metrics
    include the AUC and log loss of the last pass's training predictions (at most 2M)."""
    return train(
        "ranking", paths_or_table_path, partitions, config, checkpoint=checkpoint,
        output=output, full_retrain=full_retrain, storage_options=storage_options,
        progress=progress,
    )  # fmt: skip


__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_VOCAB",
    "RankingTrainConfig",
    "TrainConfig",
    "TwoTowerTrainConfig",
    "build_vocab",
    "table_specs",
    "train",
    "train_ranking",
    "train_two_tower",
]
