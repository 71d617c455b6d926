"""Rebuild a recorded checkpoint from what it records, and say whether it came out the same.

A checkpoint records every training run that led to it (``runs``: the partitions each run
consumed, the Delta version of ``training_examples`` it read them at, warm start or not,
passes), the knobs of its last run (``config.train``: learning rates, batch size, seed, the
model's own knobs), the model's shape (``config.model``) and its vocabularies' settings
(``config.vocab``). ``reproduce`` replays the runs in order, from scratch: each reads the table
*as of its recorded version* (Delta time travel, so later re-ingestions and appends do not
change what it sees), warm-starting from the previous replayed run as the original did, with
the same knobs and seed. The training loop is deterministic on the CPU (fixed seeds, seeded
batch order, ``torch.use_deterministic_algorithms``), so a faithful record gives bit-identical
weights, vocabulary and loss; any difference is listed.

A run trained sharded (its record has ``processes`` and the plan, ``sharding``) is replayed by
the sharded trainer over as many local ranks, with the same tables split by rows, on the CPU
with gloo: N ranks take other steps than the loop, so replaying them with the loop would call
a faithful record different. Two gloo ranks replay their own run bit for bit; a run trained on
CUDA is replayed on the CPU too (the plan, also compared, may then differ). A record that
cannot be replayed so (no plan; the sharded trainer not loadable) is refused before any
training, saying why.

What it assumes, and checks where it can: every run of the chain used the knobs the last run
recorded (the asset trains with one config; a replayed model whose shape differs from the
recorded one is reported as such); the table's old versions are still readable (a ``VACUUM``
that removed their files makes time travel fail, and the error says which version); the same
number of torch threads (not recorded: set ``num_threads`` when the original set it).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from recassets.lake import version_gone
from recassets.paths import Paths
from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import RankingTrainConfig, TrainConfig, TwoTowerTrainConfig, train
from recassets.training.policy import models_dir


def config_of(recorded: Checkpoint, num_threads: int | None = None) -> TrainConfig:
    """The ``TrainConfig`` a checkpoint's last run trained with, from its record."""
    t, m = recorded.config["train"], recorded.config["model"]
    embedding_dim = int(m["tables"][0]["embedding_dim"])
    base = TrainConfig(
        batch_size=int(t["batch_size"]),
        lr=float(t["lr"]),
        embedding_lr=float(t["embedding_lr"]),
        embedding_optimizer=str(t["embedding_optimizer"]),
        seed=int(t["seed"]),
        shuffle_rows=int(t["shuffle_rows"]),
        same_day_history=bool(t["same_day_history"]),
        vocab={name: dict(cfg) for name, cfg in recorded.config["vocab"].items()},
        device="cpu",
        num_threads=num_threads,
    )
    if recorded.kind == "two_tower":
        knobs = TwoTowerTrainConfig(
            dim=int(m["dim"]),
            embedding_dim=embedding_dim,
            hidden=tuple(int(h) for h in m["hidden"]),
            temperature=float(t["temperature"]),
            logq_weight=float(t["logq_weight"]),
            user_id=bool(t["user_id"]),
        )
        return replace(base, two_tower=knobs)
    knobs = RankingTrainConfig(
        embedding_dim=embedding_dim,
        dense_dim=int(m["dense_dim"]),
        cross_layers=int(m["cross_layers"]),
        low_rank=int(m["low_rank"]),
        deep=tuple(int(d) for d in m["deep"]),
        shuffled_negatives=int(t.get("shuffled_negatives", 0)),
        sequence=int(m.get("sequence", 0)),
        attention_hidden=int(m.get("attention_hidden", 32)),
    )
    return replace(base, ranking=knobs)


@dataclass
class Reproduction:
    """The recorded checkpoint against its replay: ``differences`` empty means identical."""

    recorded: str
    runs: list[dict[str, Any]]  # what was replayed: partitions, table version, warm start
    differences: list[str] = field(default_factory=list)
    checked: int = 0  # tensors compared

    @property
    def identical(self) -> bool:
        return not self.differences

    def describe(self) -> str:
        head = (
            f"{self.recorded}: replayed {len(self.runs)} run(s) from the recorded Delta versions "
            f"({', '.join(str(r['table_version']) for r in self.runs)})"
        )
        if self.identical:
            return f"{head}: identical ({self.checked} tensors, vocabulary, loss and row counts)"
        return f"{head}: {len(self.differences)} difference(s)\n  " + "\n  ".join(
            self.differences[:50]
        )


def _compare(recorded: Checkpoint, replayed: Checkpoint) -> tuple[list[str], int]:
    out: list[str] = []
    if replayed.config["model"] != recorded.config["model"]:
        out.append("model shape: the replayed config differs from the recorded one")
    a, b = recorded.state_dict, replayed.state_dict
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            out.append(f"tensor {name}: only in the {'recorded' if name in a else 'replayed'}")
        elif a[name].shape != b[name].shape:
            out.append(f"tensor {name}: shape {tuple(a[name].shape)} != {tuple(b[name].shape)}")
        elif not torch.equal(a[name], b[name]):
            diff = (a[name].double() - b[name].double()).abs().max().item()
            out.append(f"tensor {name}: max |difference| {diff:.3g}")
    if _plain(replayed.vocab) != _plain(recorded.vocab):
        out.append("vocabulary: the replayed id mappings differ from the recorded ones")
    if replayed.source.get("partitions") != recorded.source.get("partitions"):
        out.append(
            f"partitions: replayed {replayed.source.get('partitions')} != recorded "
            f"{recorded.source.get('partitions')}"
        )
    for i, (r, p) in enumerate(zip(recorded.runs, replayed.runs, strict=False)):
        for key in ("examples", "steps", "loss", "processes", "sharding"):
            if r.get(key) != p.get(key):
                out.append(f"run {i + 1} {key}: recorded {r.get(key)} != replayed {p.get(key)}")
    return out, len(set(a) & set(b))


def _plain(obj: Any) -> Any:
    """Tensors as lists, for comparing nested state."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def model_file(paths: Paths, text: str) -> Path:
    """The checkpoint file of a model version as the CLI names it (``two_tower/0003``), or
    ``ValueError`` (any other form: nothing typed becomes a path) / ``FileNotFoundError``."""
    from recassets.lineage.graph import TargetError, parse_target  # ASCII only

    try:
        target = parse_target(text)
    except TargetError:  # the lineage's whole usage named bentos, tables and request ids
        target = None
    if target is None or target.kind != "model":
        raise ValueError(f"{text[:80]!r} is not a model version (two_tower/0003, ranking/0002)")
    kind, _, number = target.name.partition("/")
    path = models_dir(paths) / kind / f"{number}.pt"
    if not path.is_file():
        from recassets.lineage.verify import bento_copy

        found = bento_copy(paths, kind, f"{number}.pt")
        if found is None:
            raise FileNotFoundError(
                f"no checkpoint {target.name} ({path}), and no bento holds a copy of it"
            )
        return found[0]
    return path


def not_in_log(path: str, version: int) -> str | None:
    """Why a local table's ``_delta_log`` lacks ``version`` when it holds versions around it
    or below it, else None. A checkpoint recorded reading that version, so it was written:
    its commit file was removed (or the table made anew). ``lake.version_gone`` said "version
    1 was never written (the table's latest is 0)" of a commit file deleted."""
    from recassets.lake import _log_versions

    kept = _log_versions(path)
    if not kept or version < kept[0] or version in kept:  # below: log cleanup, said there
        return None
    return (f"version {version} is not in its Delta log {Path(path) / '_delta_log'} (removed, "
            f"or never written: it holds versions {kept[0]} to {kept[-1]})")  # fmt: skip


def row_wise_of(run: Mapping[str, Any]) -> tuple[str, ...]:
    """The tables a sharded run split by rows, from the plan it records."""
    return tuple(t for t, p in run.get("sharding", {}).items() if p.get("sharding") == "row_wise")


def sharded_unreplayable(run: Mapping[str, Any]) -> str | None:
    """Why a run trained sharded (its record has ``processes``) cannot be replayed here, else
    None. It is replayed with the sharded trainer (``distributed.train_distributed``), as many
    ranks and the same tables split by rows, on the CPU with gloo (which runs any number of
    ranks on one host): the loop would take other steps (N ranks take 1/N of its steps over
    N x batch_size rows) and report a faithful record as differing."""
    if "processes" not in run:
        return None
    n = run["processes"]
    if not isinstance(n, int) or n < 1:
        return f"records processes={n!r}, not a number of ranks"
    if not isinstance(run.get("sharding"), Mapping) or not run["sharding"]:
        return f"was trained over {n} ranks but records no sharding plan to replay it with"
    try:  # torchrec and fbgemm's kernels
        importlib.import_module("recassets.training.distributed")
    except ImportError as e:
        return f"was trained over {n} ranks, and the sharded trainer cannot load here ({e})"
    return None


def reproduce(
    checkpoint: str | os.PathLike[str],
    table: str | None = None,
    *,
    num_threads: int | None = None,
) -> Reproduction:
    """Replay the training runs ``checkpoint`` records (see the module) on ``table`` (default
    the table it records) and compare the result with it."""
    recorded = Checkpoint.load(checkpoint)
    path = table or recorded.source["table"]
    if not Path(path).exists() and "://" not in path:
        raise FileNotFoundError(f"training table {path} (recorded by {checkpoint}) not found")
    config = config_of(recorded, num_threads)
    for i, run in enumerate(recorded.runs, 1):  # before any training: time travel must reach
        version = int(run["table_version"])
        why = not_in_log(path, version) or version_gone(path, version, run["partitions"])
        if why is not None:
            raise ValueError(
                f"{checkpoint} cannot be reproduced from {path}: run {i} of "
                f"{len(recorded.runs)} read it at version {run['table_version']}, and {why}. "
                "Keep the versions models record (docs/ingestion-and-lineage.md, "
                '"Reproducing a model version")'
            )
        why = sharded_unreplayable(run)
        if why is not None:
            raise ValueError(f"{checkpoint} cannot be reproduced here: run {i} {why}")
    replayed: Checkpoint | None = None
    for run in recorded.runs:
        days: list[str] = sorted({*(replayed.partitions if replayed else []), *run["partitions"]})
        fit: Callable[..., Checkpoint] = train
        if "processes" in run:  # the sharded trainer, as many ranks, the same plan
            from recassets.training.distributed import train_distributed

            fit = partial(train_distributed, processes=int(run["processes"]),
                          row_wise=row_wise_of(run))  # fmt: skip
        replayed = fit(
            recorded.kind,
            path,
            days,
            replace(config, epochs=int(run["epochs"])),
            checkpoint=None if run["full_retrain"] else replayed,
            full_retrain=bool(run["full_retrain"]),
            version=int(run["table_version"]),
        )
    if replayed is None:
        raise ValueError(f"{checkpoint} records no training run")
    differences, checked = _compare(recorded, replayed)
    runs = [
        {k: r[k] for k in ("partitions", "table_version", "warm_start", "full_retrain")}
        for r in recorded.runs
    ]
    return Reproduction(str(checkpoint), runs, differences, checked)


__all__ = ["Reproduction", "config_of", "model_file", "not_in_log", "reproduce"]
