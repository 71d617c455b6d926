"""Two-tower training on CUDA: ``benchmarks.train``'s comparison on one GPU, in one run.

The trainer end to end (Delta read included), our model step, and the same model and
algorithm in plain PyTorch (``nn.EmbeddingBag(sparse=True)`` with row-wise Adagrad written
out, and with ``torch.optim.Adagrad``), all on the trainer's own batches from the same initial
weights, each pass timed the same way (CUDA synchronized at both ends); see ``benchmarks.train``
for what each line means and for the loss check.

    .venv/bin/python -m benchmarks.train_gpu [--days 5] [--users 10000] [--rounds 3]

Options: ``--dim`` (64), ``--batch`` (1024), ``--days`` (5) planted days trained, ``--users``
(10000; ~57 steps a day at batch 1024) and ``--items`` (50000) per planted day, ``--rounds``
(3) timed rounds after a warm-up round, ``--loss-tol`` (0.01) relative loss gap allowed between
the fused step and plain row-wise Adagrad.

Works with the CUDA ``fbgemm-gpu`` wheel (fused row-wise Adagrad in fbgemm's kernels) and with
TorchRec 1.6.x + ``fbgemm-gpu-cpu`` 1.6.0 on torch 2.11, where fbgemm has no CUDA kernels:
``recassets.models.embeddings`` then falls back to an unsharded ``EmbeddingBagCollection`` on
CUDA with the unfused row-wise Adagrad (the model step's line says which ran). Exits with
status 2 and a message when CUDA is not available.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings

import torch


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--days", type=int, default=5, help="planted days trained")
    ap.add_argument("--users", type=int, default=10_000, help="planted users per day")
    ap.add_argument("--items", type=int, default=50_000, help="planted items")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up")
    ap.add_argument("--loss-tol", type=float, default=0.01)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available (torch.cuda.is_available() is False): nothing to measure; "
              "run python -m benchmarks.train for the CPU figures.", file=sys.stderr)  # fmt: skip
        return 2

    import torchrec

    from benchmarks.train import planted_days, report, run_rounds, write_planted
    from recassets.models.embeddings import fused_kernels_available

    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    print(f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}, torchrec "
          f"{getattr(torchrec, '__version__', '?')}; fbgemm fused CUDA kernels: "
          f"{fused_kernels_available('cuda')}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = write_planted(tmp, a.days, a.users, a.items)
        runs, ckpt, kind, steps = run_rounds(
            path, planted_days(a.days), a.batch, a.dim, None, a.rounds, "cuda"
        )
    print(f"dim={a.dim}, batch={a.batch}, {a.days} planted days x {a.users} users: {steps} "
          f"steps, {ckpt.metrics['examples']} positives a pass; {a.rounds} rounds after a "
          "warm-up\n")  # fmt: skip
    report(runs, kind, a.loss_tol, trainer_tol=a.loss_tol)  # CUDA runs are not deterministic
    return 0


if __name__ == "__main__":
    sys.exit(main())
