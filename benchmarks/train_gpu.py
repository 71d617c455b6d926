"""Two-tower training on CUDA: the trainer end to end (Delta read included) for a few hundred
steps, beside the model step alone on in-memory batches and the plain-PyTorch
``nn.EmbeddingBag`` baselines, all on the same GPU in one run.

    .venv/bin/python -m benchmarks.train_gpu [--days 5] [--users 10000] [--steps 200]

Works with the CUDA ``fbgemm-gpu`` wheel (fused row-wise Adagrad in fbgemm's kernels) and with
TorchRec 1.6.x + ``fbgemm-gpu-cpu`` 1.6.0 on torch 2.11, where fbgemm has no CUDA kernels:
``recassets.models.embeddings`` then falls back to an unsharded ``EmbeddingBagCollection`` on
CUDA with the unfused row-wise Adagrad (the line printed says which ran). Exits with status 2
and a message when CUDA is not available.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import torch


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--hist", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200, help="timed steps of the in-memory runs")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--days", type=int, default=5, help="planted days trained end to end")
    ap.add_argument(
        "--users", type=int, default=10_000, help="planted users per day (~57 steps/day)"
    )
    ap.add_argument("--items", type=int, default=50_000)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available (torch.cuda.is_available() is False): nothing to measure; "
              "run python -m benchmarks.train for the CPU figures.", file=sys.stderr)  # fmt: skip
        return 2

    import torchrec

    from benchmarks.train import (
        make_batches,
        ours_model_step,
        plain_step,
        planted_days,
        write_planted,
    )
    from recassets.models.embeddings import fused_kernels_available
    from recassets.training.loop import TrainConfig, TwoTowerTrainConfig, train_two_tower

    dev = "cuda"
    print(f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}, torchrec "
          f"{getattr(torchrec, '__version__', '?')}; fbgemm fused CUDA kernels: "
          f"{fused_kernels_available('cuda')}")  # fmt: skip
    print(f"rows={a.rows} dim={a.dim} batch={a.batch} hist={a.hist}")

    with tempfile.TemporaryDirectory() as tmp:
        path = write_planted(tmp, a.days, a.users, a.items)
        config = TrainConfig(
            batch_size=a.batch, device=dev, two_tower=TwoTowerTrainConfig(dim=a.dim)
        )
        ckpt = train_two_tower(path, planted_days(a.days), config)
        m = ckpt.metrics
        print(f"{'trainer end to end (Delta), ' + m['embedding_optimizer']:48s} {m['examples_per_s']:10.0f} "
              f"examples/s ({m['steps']} steps, {m['examples']} positives, {m['seconds']:.1f}s)")  # fmt: skip

    data = make_batches(a.rows, a.batch, a.hist, 16)
    eps, kind = ours_model_step(data, a.rows, a.dim, a.steps, a.warmup, dev)
    print(f"{'model step, ' + kind:48s} {eps:10.0f} examples/s")
    for sparse, name in (
        (False, "plain EmbeddingBag, dense Adam"),
        (True, "plain EmbeddingBag, sparse + SparseAdam"),
    ):
        print(
            f"{name:48s} {plain_step(data, a.rows, a.dim, a.steps, a.warmup, sparse, dev):10.0f} examples/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
