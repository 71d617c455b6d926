"""The checkpoint file: what a trained model is saved as, and how it is read back.

Its own module because both sides of training use it and neither should load the other: the
training loop (``recassets.training.loop``) writes checkpoints and warm-starts from them,
inference (``recassets.training.inference``, and through it serving) reads them. It needs torch
only for ``torch.save`` / ``torch.load``.

A checkpoint is a dict of tensors and primitives only (``Checkpoint.to_dict``): it loads with
``torch.load(weights_only=True)``, never unpickles code, and is written atomically.
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

import recassets
from recassets import atomic

CHECKPOINT_FORMAT = 1


class DamagedArtifactError(ValueError):
    """A model file that exists but cannot be read as what it should be."""


def check_zip(path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` when a zip file's member fails its CRC-32 (the file changed since it
    was written: a flipped block on disk, a copy gone wrong). ``torch.save`` and ``np.savez``
    write zips whose CRCs their loaders never check: a damaged checkpoint loaded and served
    changed weights without a word. One read of the file: 17 ms for 40 MB, a third of torch.load."""
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    if bad is not None:
        raise ValueError(f"its member {bad} fails its CRC-32 check: changed since it was written")


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

    def save(self, path: str | os.PathLike[str], *, exclusive: bool = False) -> str:
        """Write atomically: a temporary file in the same folder, then ``os.replace``;
        ``exclusive``: only if ``path`` does not exist (``FileExistsError`` otherwise), as a
        new checkpoint version is created."""
        target = atomic.write_with(
            path, lambda f: torch.save(self.to_dict(), f), exclusive=exclusive
        )
        self.path = str(target)
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Read a saved checkpoint. A truncated or corrupt file (or one that is not a
        checkpoint) raises ``DamagedArtifactError`` naming it, whatever torch's own error."""
        try:
            check_zip(path)
            # weights_only: tensors and primitives only, no code is unpickled.
            raw = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(raw, Mapping):
                raise ValueError(f"holds a {type(raw).__name__}, not a checkpoint's mapping")
            return cls.from_dict(raw, path=str(path))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise DamagedArtifactError(
                f"checkpoint {path} is damaged or not a checkpoint: {exc}"
            ) from exc


RUN_METRICS = ("epochs", "examples", "steps", "loss", "seconds", "examples_per_s")


def record_run(
    kind: str,
    *,
    model_config: dict[str, Any],
    train: Mapping[str, Any],
    vocab_configs: Mapping[str, Any],
    vocab_state: dict[str, Any],
    state: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    prior: Checkpoint | None,
    table: str,
    todo: Sequence[str],
    consumed: Mapping[str, dict[str, int]],
    version: int,
    full_retrain: bool,
    metrics: dict[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """The checkpoint of a training run that consumed ``todo`` (``consumed``: their Delta
    version and rows) at table ``version``, after ``prior`` (a warm start) or from scratch: the
    partitions so far, the runs so far plus this one (with ``extra`` in its record), the
    knobs ``train`` and the vocabularies' settings. The one builder of both trainers (the
    loop and the sharded one), so their checkpoints cannot drift apart."""
    partitions_done = dict(prior.source["partitions"]) if prior is not None else {}
    partitions_done.update(consumed)
    run_record = {
        "partitions": list(todo),
        "table_version": version,
        "warm_start": prior is not None,
        "full_retrain": bool(full_retrain),
        **{k: metrics[k] for k in RUN_METRICS},
        **(extra or {}),
    }
    return Checkpoint(
        kind=kind,
        config={
            "model": model_config,
            "train": dict(train),
            "vocab": {name: cfg.to_dict() for name, cfg in vocab_configs.items()},
        },
        state_dict=state,
        optimizer=optimizer,
        vocab=vocab_state,
        source={"table": table, "partitions": partitions_done},
        runs=(list(prior.runs) if prior is not None else []) + [run_record],
        metrics=metrics,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def as_checkpoint(
    checkpoint: Checkpoint | str | os.PathLike[str] | Mapping[str, Any],
) -> Checkpoint:
    """A ``Checkpoint`` from itself, its ``to_dict()`` or a saved file's path."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, Mapping):
        return Checkpoint.from_dict(checkpoint)
    return Checkpoint.load(checkpoint)


__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "as_checkpoint", "check_zip", "record_run"]
