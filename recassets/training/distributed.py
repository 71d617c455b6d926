"""Sharded training: the two-tower or the ranker over N processes with TorchRec's
``DistributedModelParallel`` (the planner shards the embedding tables, DDP replicates the dense
layers), gloo on the CPU, NCCL on CUDA. Same data, same checkpoint format as the single-process
loop (``recassets.training.loop``), which stays the default.

Two ways in:

- ``train_distributed(kind, table, partitions, config, processes=N)``: from Python (the training
  asset through ``recassets.training.policy.train_next`` when ``RECASSETS_TRAIN_PROCESSES`` > 1).
  It starts N worker processes on this host as one process group (rank 0 leads a new session,
  the others join its group: one session could not hold them), rendezvous on a free loopback port, waits, and stops the whole
  group with ``recassets.process.stop_process_group`` if a rank fails or the caller is
  interrupted. Rank 0 writes the checkpoint; the caller gets it back.
- ``torchrun --nnodes M --nproc-per-node N -m recassets.training.distributed SPEC.json``: on a
  cluster (``deploy/k8s/training-job.yaml``), where torchrun sets ``RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR`` / ``MASTER_PORT``. ``SPEC.json`` is what ``write_spec`` writes.

What a rank does, against the single-process loop:

- the same vocabulary on every rank: each counts every partition and applies the same updates
  (deterministic), and recycled rows are re-initialized in whichever shard holds them;
- the same batch stream, split: batches of ``batch_size x N`` rows are read in the loop's
  seeded order, and rank r takes rows ``[r * batch_size, (r + 1) * batch_size)``, which is
  exactly the loop's batch ``k * N + r`` (the shuffle window, 64k rows, is larger than a global
  batch, so the row order is the loop's). The short last batch of a day is cut into N equal
  parts; its at most N - 1 leftover rows are not trained on (every rank must take the same
  number of steps: each step is a collective);
- ``batch_size`` is per rank: the in-batch softmax keeps its number of negatives, and one step
  learns from N x ``batch_size`` examples (DDP averages the dense gradients; the sharded tables
  sum theirs, to which row-wise Adagrad is scale-invariant). Per example, N ranks make 1/N of
  the loop's steps at the same learning rates, so the loss after one pass lags the loop's
  (docs/training-and-the-gate.md, "Sharded training", has the figures);
- the start is the loop's: the fresh model is built with the same seed (so both start from the
  same weights), or the warm start's checkpoint is loaded, and its tensors are scattered into
  the shards (``sharding.load_state``);
- at the end every shard and accumulator is gathered on rank 0 into the loop's checkpoint
  format: ``state_dict`` unsharded, the embedding optimizer's row-wise Adagrad state in the
  fused module's layout (complete: nothing is lost to sharding), the dense Adam state. The run
  record adds ``processes`` and the plan's ``sharding``.

Metrics: loss and examples over all ranks; the vocabulary's OOV and collision rates count
rank 0's share of the batches only; the ranker's training AUC, every rank's scores.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from recassets.models.embeddings import dense_optimizer, dense_parameters
from recassets.models.metrics import log_loss, roc_auc
from recassets.process import stop_process_group
from recassets.training import data as D
from recassets.training import sharding as S
from recassets.training.checkpoint import Checkpoint, as_checkpoint, record_run
from recassets.training.examples import PathsOrTable
from recassets.training.inference import build_model
from recassets.training.loop import (
    _MAX_EVAL_SCORES,
    _RUNS,
    DEFAULT_CONFIG,
    TrainConfig,
    _cpu,
    _reproducible,
    _start,
    _threads,
    reinit_sequence_rows,
    train_record,
)
from recassets.training.schema import COHORT_DENSE
from recassets.training.settings import (  # their home (no torch); re-exported for callers
    ENV_PROCESSES,
    ENV_ROW_WISE,
    processes_from_env,
    row_wise_from_env,
)
from recassets.training.worker_spec import (  # the spec's home; re-exported for callers
    check_storage_options,
    config_from_dict,
    config_to_dict,
    write_spec,
)


class DistributedTrainingError(RuntimeError):
    """A rank failed (its log's tail is in the message)."""


# --- one rank -----------------------------------------------------------------------------------


def _uses_cuda(config: TrainConfig) -> bool:
    """Whether the ranks train on CUDA (with NCCL), as ``main`` decides."""
    return torch.cuda.is_available() and (config.device is None or "cuda" in str(config.device))


def check_gpus(config: TrainConfig, processes: int) -> None:
    """Refuse more local ranks than GPUs when they would train on CUDA: rank r takes
    ``cuda:r`` (an invalid ordinal past the last GPU), and NCCL refuses two ranks on one GPU.
    No falling back to the CPU for the extra ranks: a process group has one backend, the
    planner plans for one kind of device, and CPU ranks would pace the GPU ones anyway."""
    if processes <= 1 or not _uses_cuda(config):
        return
    gpus = torch.cuda.device_count()
    pinned = ":" in str(config.device or "")  # "cuda:0": one GPU named for every rank
    if pinned or processes > gpus:
        where = f"device {config.device} for every rank" if pinned else f"{gpus} GPU(s) here"
        raise ValueError(
            f"{ENV_PROCESSES}={processes} local ranks on CUDA, but {where}: each rank needs a "
            f"GPU of its own (NCCL refuses two ranks on one). Set {ENV_PROCESSES} to at most "
            f"{1 if pinned else gpus}, device 'cuda' (rank r on cuda:r), or device 'cpu' (gloo)"
        )


def _rank_device(requested: Any) -> torch.device:
    if requested is not None:
        dev = torch.device(requested)
    else:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and dev.index in (None, -1):  # "cuda" alone: this rank's device
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def _sum_over_ranks(values: Sequence[float], dev: torch.device) -> list[float]:
    """Each of ``values`` summed over the ranks. NCCL reduces CUDA tensors only, and a move to
    CUDA is a copy: the sums are read back from the tensor the collective wrote, not from the
    CPU tensor it was copied from (which keeps this rank's own numbers)."""
    totals = torch.tensor(list(values), dtype=torch.float64).to(dev)
    dist.all_reduce(totals)
    return totals.cpu().tolist()


def fit_sharded(
    kind: str,
    table: str,
    partitions: Sequence[dt.date | str],
    config: TrainConfig,
    *,
    checkpoint: str | None,
    output: str | None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
    row_wise: Sequence[str] = S.DEFAULT_ROW_WISE,
) -> Checkpoint | None:
    """One rank of the sharded run (the process group is initialized); returns the checkpoint
    on rank 0 (also saved to ``output``), None on the others."""
    rank, world = dist.get_rank(), dist.get_world_size()
    run = _RUNS[kind](config)
    dev = _rank_device(config.device)
    days = D.normalize_partitions(partitions)
    if not days:
        raise ValueError("no partitions to train on")
    prior = None if (checkpoint is None or full_retrain) else as_checkpoint(checkpoint)
    if prior is not None and prior.kind != run.kind:
        raise ValueError(f"checkpoint is a {prior.kind} model, not {run.kind}")
    todo = days if prior is None else [d for d in days if d not in set(prior.partitions)]
    if not todo:
        raise ValueError("nothing new to train on (train_distributed returns the checkpoint)")
    passes = config.epochs if prior is None else 1
    if passes < 1:
        raise ValueError("epochs must be >= 1")

    source = D.TrainingSource.open(table, storage_options, version)
    with _threads(config.num_threads), _reproducible(config.seed, dev):
        # The loop's own start, on the CPU: a fresh model from the same seed, or the checkpoint
        # loaded; its tensors then go to the shards.
        voc, model_config, start, start_opt = _start(run, config, prior, torch.device("cpu"))
        full_state = {k: v.detach() for k, v in start.state_dict().items()}
        emb_state = start.embeddings.optimizer_state_dict()
        meta = build_model(run.kind, model_config, torch.device("meta"), embedding_optimizer="none")
        tables = [t["name"] for t in model_config["tables"]]
        dmp, plan = S.shard(
            meta, tables, row_wise=row_wise, embedding_lr=config.embedding_lr, device=dev
        )
        S.check_views(dmp)
        S.load_state(dmp, full_state, emb_state)
        dense_opt = dense_optimizer(dense_parameters(dmp.module), config.lr, start_opt.state_dict())
        del start, start_opt, full_state, emb_state
        dmp.train()
        voc.reset_stats()

        with_cross = set(COHORT_DENSE) <= set(run.columns)
        consumed: dict[str, dict[str, int]] = {}
        recycled_total = 0
        t0 = time.perf_counter()
        examples = steps = 0
        last_loss_sum, last_examples, last_positives = 0.0, 0, 0
        first_loss: float | None = None
        scores: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        n_scores = 0
        gen_neg = np.random.default_rng([config.seed, rank])
        for epoch in range(passes):
            last = epoch == passes - 1
            for day in todo:
                ordinal = D.as_day(day).toordinal()
                counts = D.count_partition(source, day)
                if epoch == 0:
                    updates = voc.update(counts.ids, now_step=ordinal)
                    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + ordinal)
                    for name, upd in updates.items():
                        S.reinit_rows(dmp, name, upd.recycled, generator=gen)
                        reinit_sequence_rows(dmp, name, upd.recycled, gen, dense_opt)
                        recycled_total += len(upd.recycled)
                    consumed[day] = {"version": source.version, "rows": counts.rows}
                same_day = D.SameDayHistory.read(source, day) if config.same_day_history else None
                for tbl in D.stream_batches(
                    source,
                    day,
                    batch_size=config.batch_size * world,
                    columns=(*run.columns, "ts") if same_day is not None else run.columns,
                    positives_only=run.positives_only,
                    shuffle_rows=config.shuffle_rows,
                    seed=[config.seed, epoch, ordinal],
                ):
                    per = min(config.batch_size, tbl.num_rows // world)  # equal on every rank
                    if per < (2 if run.positives_only else 1):
                        continue  # in-batch softmax needs negatives
                    part = tbl.slice(rank * per, per)
                    if same_day is not None:
                        part = same_day.apply(part)
                    if run.kind == "ranking" and config.ranking.shuffled_negatives:
                        part = D.shuffled_negatives(
                            part, config.ranking.shuffled_negatives, gen_neg
                        )
                    batch = D.to_batch(
                        part,
                        voc,
                        item_frequency=counts.positives,
                        record=last,
                        cross=with_cross,
                    ).to(dev)
                    loss, logits = run.step(dmp, batch)
                    dense_opt.zero_grad(set_to_none=True)
                    loss.backward()  # DDP all-reduces the dense grads; the shards update here
                    dense_opt.step()
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise FloatingPointError(f"loss is {value} at step {steps} ({day})")
                    if first_loss is None:
                        first_loss = value
                    steps += 1
                    examples += len(batch)
                    if last:
                        last_loss_sum += value * len(batch)
                        last_examples += len(batch)
                        last_positives += int((batch.labels > 0.5).sum())
                        if logits is not None and n_scores < _MAX_EVAL_SCORES // world:
                            scores.append(logits.detach().float().cpu().numpy())
                            labels.append(batch.labels.cpu().numpy())
                            n_scores += len(batch)
        elapsed = time.perf_counter() - t0

        totals = _sum_over_ranks(
            [last_loss_sum, last_examples, examples, first_loss or 0.0, last_positives], dev
        )
        last_loss_sum, last_examples, examples = totals[0], int(totals[1]), int(totals[2])
        last_positives = int(totals[4])
        first_mean = totals[3] / world
        gathered = S.gather_to_rank0((scores, labels)) or []
        unsharded = S.gather_state(dmp)
        summary = S.plan_summary(plan)
        dense_state = _cpu(dense_opt.state_dict())
    if rank != 0 or unsharded is None:
        return None

    state, emb_opt = unsharded
    emb_opt["gathered_from"] = world  # complete: every shard's accumulators, in the loop's layout
    metrics: dict[str, Any] = {
        "loss": last_loss_sum / last_examples if last_examples else float("nan"),
        "first_loss": first_mean,
        "examples": examples,
        "train_positives": last_positives,  # of the last pass's rows, every process's
        "steps": steps,
        "epochs": passes,
        "seconds": elapsed,
        "examples_per_s": examples / elapsed if elapsed > 0 else 0.0,
        "recycled_rows": recycled_total,
        "vocab": voc.stats(),
        "device": str(dev),
        "embedding_optimizer": "fused_rowwise_adagrad",
        "processes": world,
        "sharding": {t: v["sharding"] for t, v in summary.items()},
    }
    all_scores = [a for s, _ in gathered for a in s]
    if all_scores:
        s, y = np.concatenate(all_scores), np.concatenate([b for _, ls in gathered for b in ls])
        metrics["train_auc"] = roc_auc(s, y)
        metrics["train_logloss"] = log_loss(1 / (1 + np.exp(-s)), y)
    ckpt = record_run(
        run.kind,
        model_config=model_config,
        train=train_record(run.train_config, config, "fused_rowwise_adagrad"),
        vocab_configs=voc.configs(),
        vocab_state=voc.state_dict(),
        state=state,
        optimizer={"embedding": emb_opt, "dense": dense_state},
        prior=prior,
        table=table,
        todo=todo,
        consumed=consumed,
        version=source.version,
        full_retrain=full_retrain,
        metrics=metrics,
        extra={"processes": world, "sharding": summary},
    )
    if output is not None:
        ckpt.save(output)
    return ckpt


def main(argv: Sequence[str] | None = None) -> int:
    """A worker: ``python -m recassets.training.distributed SPEC.json`` under torchrun or
    ``train_distributed`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` set)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m recassets.training.distributed SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    config = config_from_dict(spec["config"])
    dist.init_process_group("nccl" if _uses_cuda(config) else "gloo")
    try:
        ckpt = fit_sharded(
            spec["kind"],
            spec["table"],
            spec["partitions"],
            config,
            checkpoint=spec["checkpoint"],
            output=spec["output"],
            full_retrain=spec["full_retrain"],
            storage_options=spec["storage_options"],
            version=spec["version"],
            row_wise=tuple(spec["row_wise"]),
        )
        if ckpt is not None:
            m = ckpt.metrics
            print(
                f"rank 0 of {m['processes']}: {m['examples']} examples, loss {m['loss']:.4f}, "
                f"{m['examples_per_s']:.0f} examples/s, sharding {m['sharding']}",
                flush=True,
            )
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


# --- the launcher -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def train_distributed(
    kind: str,
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    processes: int = 2,
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
    row_wise: Sequence[str] | None = None,
    timeout_s: float | None = None,
) -> Checkpoint:
    """``loop.train`` over ``processes`` local ranks (see the module docstring): the same
    arguments, the same checkpoint. ``row_wise``: tables split by rows (default
    ``RECASSETS_TRAIN_ROW_WISE``, else ``item_id``); the others go whole to one rank each.
    ``timeout_s``: stop the group and raise after that long."""
    if kind not in _RUNS:
        raise ValueError(f"unknown model kind {kind!r}")
    if processes < 1:
        raise ValueError("processes must be >= 1")
    check_gpus(config, processes)
    check_storage_options(storage_options)  # before anything starts (write_spec checks too)
    rows = row_wise_from_env() if row_wise is None else tuple(row_wise)
    prior, days = prior_and_days(checkpoint, partitions, full_retrain)
    if prior is not None and up_to_date(prior, days, output):
        return prior  # nothing new, as the loop does
    with tempfile.TemporaryDirectory(prefix="recassets-dmp-") as tmp:
        folder = Path(tmp)
        spec, out = run_spec(folder, kind, paths_or_table_path, days, config, prior,
                             full_retrain=full_retrain, storage_options=storage_options,
                             version=version, row_wise=rows)  # fmt: skip
        _run_group(spec, processes, folder, timeout_s)
        ckpt = Checkpoint.load(out)
        if output is not None:
            ckpt.save(output)
        else:
            ckpt.path = None  # the temporary file goes with the folder
        return ckpt


def prior_and_days(
    checkpoint: Any, partitions: Sequence[Any], full_retrain: bool
) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint a run warm-starts from (None: from scratch) and its normalized days."""
    prior = None if (checkpoint is None or full_retrain) else as_checkpoint(checkpoint)
    return prior, D.normalize_partitions(partitions)


def run_spec(
    folder: Path, kind: str, paths_or_table_path: Any, days: Sequence[str], config: Any,
    prior: Checkpoint | None, **spec: Any,
) -> tuple[str, Path]:  # fmt: skip
    """A run's spec in ``folder`` (``write_spec``; a prior checkpoint without a file is saved
    there first) and where its checkpoint will be written. Returns (spec path, output)."""
    prior_path: str | None = None
    if prior is not None:
        prior_path = prior.path if prior.path else prior.save(folder / "prior.pt")
    out = folder / "checkpoint.pt"
    path = write_spec(folder / "spec.json", kind, paths_or_table_path, days, config, output=out,
                      checkpoint=prior_path, **spec)  # fmt: skip
    return path, out


def up_to_date(prior: Checkpoint, days: Sequence[str], output: Any) -> bool:
    """Whether ``prior`` already consumed every one of ``days`` (nothing new to train, as the
    loop decides); then it is saved to ``output`` when that is another file."""
    if not days or [d for d in days if d not in set(prior.partitions)]:
        return False
    if output is not None and (
        prior.path is None or Path(prior.path).resolve() != Path(output).resolve()
    ):
        prior.save(output)
    return True


def _run_group(spec: str, processes: int, folder: Path, timeout_s: float | None) -> None:
    """Start ``processes`` workers as one process group, wait for all; on a failed rank, a
    timeout or an interrupt, stop the group and raise."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": str(processes),
        "LOCAL_WORLD_SIZE": str(processes),
        # one OpenMP thread per rank unless set: ranks share the host's cores (loop._threads)
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    procs: list[subprocess.Popen[Any]] = []
    logs = [folder / f"rank{r}.log" for r in range(processes)]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        for r in range(processes):
            group: dict[str, Any] = (
                {"process_group": 0} if r == 0 else {"process_group": procs[0].pid}
            )
            with open(logs[r], "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "recassets.training.distributed", spec],
                        env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        **group,
                    )
                )
        while True:
            codes = [p.poll() for p in procs]
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                raise DistributedTrainingError(
                    f"rank {failed[0]} of {processes} exited with {codes[failed[0]]}:\n"
                    + _tail(logs[failed[0]])
                )
            if all(c == 0 for c in codes):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise DistributedTrainingError(f"sharded training ran past {timeout_s} s")
            time.sleep(0.1)
    finally:
        # the leader's group takes every rank with it; a rank left after its leader exited
        # (already reaped) is stopped alone
        for p in procs:
            if p.poll() is None:
                stop_process_group(p, timeout_s=30.0)


__all__ = [
    "ENV_PROCESSES",
    "ENV_ROW_WISE",
    "DistributedTrainingError",
    "check_gpus",
    "check_storage_options",
    "config_from_dict",
    "config_to_dict",
    "fit_sharded",
    "processes_from_env",
    "row_wise_from_env",
    "train_distributed",
    "write_spec",
]


if __name__ == "__main__":
    sys.exit(main())
