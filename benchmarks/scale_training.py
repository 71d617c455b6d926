"""Training with 1 and with 2 CPU ranks on the same data: examples per second and the loss of
each after the same examples (issue 18's "training examples per second with 1 and with 2 CPU
ranks"; the Spark Connect, S3 and Redis pairs have their own scripts, e.g.
``benchmarks/scale_embeddings.py``).

Three rows, each one run on the same planted ``training_examples`` table (``support.planted``,
``--days`` days of ``--users`` users), the same ``TrainConfig``, the same number of passes:

1. ``loop``: the single-process loop (``recassets.training.loop.train``), the baseline;
2. ``DMP, 1 rank``: the sharded trainer with one process (``train_distributed(processes=1)``):
   what TorchRec's sharded modules, DDP and the process launch cost by themselves;
3. ``DMP, 2 ranks``: two processes, gloo, ``item_id`` row-wise and the other tables
   table-wise: the split of each step's work against the collectives it adds.

Same data work on every row: the loop keeps each day's reads for its later passes
(``training.day_reads.DayReads``, ``keep`` when there is more than one pass) where the DMP
trainer reads every day again on each pass. Here the loop is made to re-read too (``DayReads``
with ``keep`` off, which changes no batch: only the reads' cost), so with ``--epochs`` above 1
all three rows scan and decode each day once a pass.

Examples/s is each run's own figure (clock started after the model is built and sharded, so
process start, imports and the planner are outside it; "wall" includes them). The three runs
are repeated ``--repeats`` (2) times, the order reversed every other repeat (the machine's
drift is shared rather than landing on one row); each figure is the mean of its repeats, the
repeats printed beside. The ratio is examples/s of the row over the loop's (a speedup above
1). The loss is the last pass's mean loss: with ``batch_size`` per rank, 2 ranks make half the
steps per pass.
On 2 shared cores this is an overhead to know, not a target: two ranks here compete for the
same two cores with the rest of the machine, where on a cluster each rank has its own.

    .venv/bin/python -m benchmarks.scale_training [--days 3] [--users 400] [--epochs 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import machine_line
from support import planted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kind", default="two_tower", choices=("two_tower", "ranking"))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each row, order alternating"
    )
    args = parser.parse_args(argv)

    from recassets.training import loop
    from recassets.training.day_reads import DayReads
    from recassets.training.distributed import train_distributed
    from recassets.training.loop import TrainConfig, TwoTowerTrainConfig, train

    class Reread(DayReads):
        """The loop's reads without keeping them across passes: the DMP trainer's data work."""

        def __init__(self, *a: Any, keep: bool, **kw: Any) -> None:
            super().__init__(*a, keep=False, **kw)

    loop.DayReads = Reread  # this process only: the DMP ranks never read through it

    print(machine_line())
    ids = {"key_type": "int64", "num_oov_buckets": 16, "min_count": 1, "ttl": 30}
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=3e-3,
        embedding_lr=0.1,
        num_threads=1,  # one thread per rank: 2 ranks fill the 2 cores
        vocab={
            "user_id": {**ids, "capacity": args.users * 2},
            "item_id": {**ids, "capacity": args.items * 2},
        },
        two_tower=TwoTowerTrainConfig(dim=32, hidden=(64,), temperature=0.1),
    )
    with tempfile.TemporaryDirectory(prefix="scale-training-") as tmp:
        table = str(Path(tmp) / "training_examples")
        planted.write_days(
            table, range(args.days), n_users=args.users, n_items=args.items, n_categories=8
        )
        days = [planted.day(i) for i in range(args.days)]
        runs = {
            "loop": lambda: train(args.kind, table, days, config),
            "DMP, 1 rank": lambda: train_distributed(
                args.kind, table, days, config, processes=1, timeout_s=1800
            ),
            "DMP, 2 ranks": lambda: train_distributed(
                args.kind, table, days, config, processes=2, timeout_s=1800
            ),
        }
        results: dict[str, list[tuple[int, int, float, float, float]]] = {n: [] for n in runs}
        for r in range(args.repeats):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for name in order:
                t = time.perf_counter()
                ckpt = runs[name]()
                wall = time.perf_counter() - t
                m = ckpt.metrics
                results[name].append(
                    (m["examples"], m["steps"], m["examples_per_s"], m["loss"], wall)
                )
    print(
        f"{args.kind}, {args.days} days x {args.users} users, {args.epochs} passes (every row "
        f"reads each day once a pass), batch {args.batch_size} per rank, {args.repeats} "
        f"repeats, order alternating"
    )
    print(
        f"{'run':<14} {'examples':>9} {'steps':>6} {'examples/s':>11} {'row/loop':>9} "
        f"{'last-pass loss':>15} {'wall s':>7}  examples/s of each repeat"
    )

    def avg(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    base = avg([x[2] for x in results["loop"]])
    for name, got in results.items():
        n, steps = got[0][0], got[0][1]
        eps, loss, wall = (avg([x[i] for x in got]) for i in (2, 3, 4))
        each = ", ".join(f"{x[2]:.0f}" for x in got)
        print(
            f"{name:<14} {n:>9} {steps:>6} {eps:>11.0f} {eps / base:>8.2f}x {loss:>15.4f} "
            f"{wall:>7.1f}  {each}"
        )


if __name__ == "__main__":
    main()
