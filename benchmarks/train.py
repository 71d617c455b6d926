"""Two-tower training throughput: our trainer and our fused step vs the same algorithm in plain
PyTorch, all on the trainer's own batches.

Every variant makes one pass over the same batches, in the same order, from the same initial
weights, with the same loss (``SampledSoftmaxLoss``: in-batch softmax, logQ correction,
accidental hits masked), the same dense optimizer (Adam, lr 1e-3) and the same embedding
learning rate (0.05, eps 1e-8). The batches are those ``train_two_tower`` makes from a planted
``training_examples`` table (``support.planted``, ``--days`` days of ``--users`` users): the
benchmark rebuilds them with the trainer's own library calls (``count_partition``, the
vocabulary update, ``stream_batches``, ``to_batch``), so the default vocabulary shapes the
tables (100k + 1k OOV rows for user and item ids, x ``--dim``).

1. ``trainer``: ``train_two_tower`` end to end (Delta read, counting, vocabulary, batching,
   step); its own ``examples_per_s``, which like the others starts after the model is built;
2. ``model step``: our ``TwoTower`` step alone on the prebuilt batches: TorchRec
   ``FusedEmbeddingBagCollection``, fbgemm's fused row-wise Adagrad (``EXACT_ROWWISE_ADAGRAD``:
   one accumulator per row, the row's mean squared gradient);
3. ``plain row-wise Adagrad``: the same model in plain PyTorch (``nn.EmbeddingBag``, mean
   pooling, ``sparse=True``) with the same update rule written in ten lines
   (``RowWiseAdagrad`` below): the baseline of the same algorithm;
4. ``plain Adagrad``: the same plain model with ``torch.optim.Adagrad`` (takes the sparse
   gradients; element-wise accumulator, so a close but not identical rule);
5. (``--quality``) Recall@50 of the trained two-tower vs trailing-7-day popularity on the
   planted table's held-out day (``recassets.training.evaluation.evaluate``).

Timed the same way: the same thread count for all (the trainer's ``num_threads``), on the CPU
under deterministic algorithms as the trainer runs (``torch.use_deterministic_algorithms``,
warn-only), a fresh model per pass, the clock started after the model is built and stopped
after the last step, the loss read back every step as the trainer does. Round 0 of every
variant is an untimed warm-up; then ``--rounds`` interleaved rounds (a neighbour's burst on a
shared machine hits all variants alike; the step variants' order rotates each round), each
variant's best and median reported.

The loss check: the mean loss over the pass (and the first step's loss) of each variant. The
model step must equal the trainer (same batches, same initial weights); the plain row-wise
Adagrad must come within ``--loss-tol`` of the model step (same algorithm: float rounding only),
or the script says they diverge.

    .venv/bin/python -m benchmarks.train [--threads 1] [--days 2] [--users 4000] [--quality]

Options: ``--dim`` (64) embedding and output dim; ``--batch`` (1024); ``--days`` (2) planted
days trained; ``--users`` (4000; about 5.7 positives per user and day: 45 steps a pass at the
defaults) and ``--items`` (20000) per planted day; ``--rounds`` (3) timed rounds after the
warm-up; ``--threads`` (1: on a small shared machine one thread beats two, see
``recassets.training.loop._threads``); ``--loss-tol`` (0.01) relative loss gap allowed between
the fused step and plain row-wise Adagrad; ``--quality``.

Examples/s count the examples the step consumes (two-tower: positives). The ratios printed last
are the issue's targets: model step >= 1.3x plain PyTorch of the same algorithm, trainer end to
end >= 0.7x the model step on the same batches (the data path costs at most 30%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recassets.models.losses import SampledSoftmaxLoss
from recassets.training import data as D
from support import planted  # the tests' planted-signal generator (delta-rs, no Spark)

EMBEDDING_LR, EPS, DENSE_LR, TEMPERATURE, SEED = 0.05, 1e-8, 1e-3, 0.05, 0  # TrainConfig's

Step = Callable[[object], float]  # one training step on a batch -> its loss


# --- the data: the trainer's batches ------------------------------------------------------------


def write_planted(folder: str, days: int, users: int, items: int) -> str:
    path = f"{folder}/training_examples"
    planted.write_days(
        path, range(days), n_users=users, n_items=items, impressions_per_user=25, history_len=20
    )
    return path


def planted_days(n: int) -> list[str]:
    start = dt.date(2026, 1, 1)  # planted.START
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


def trainer_batches(
    path: str, days: list[str], batch_size: int, shuffle_rows: int = 65_536
) -> tuple[list[D.Batch], object]:
    """The batches ``train_two_tower`` trains on in a first training (one epoch, default
    vocabulary and seed) of ``days``, in its order, and the vocabulary: the loop's own calls.
    Checked against the trainer by the loss (the fused step must reproduce its loss)."""
    from recassets.training.loop import build_vocab

    source = D.TrainingSource.open(path)
    voc = build_vocab()
    voc.reset_stats()
    out = []
    for day in D.normalize_partitions(days):
        ordinal = D.as_day(day).toordinal()
        counts = D.count_partition(source, day)
        updates = voc.update(counts.ids, now_step=ordinal)
        if any(len(u.recycled) for u in updates.values()):
            # the trainer re-initializes recycled rows; a first training on a few days has none
            raise RuntimeError("recycled rows: the benchmark does not replay their re-init")
        for tbl in D.stream_batches(
            source,
            day,
            batch_size=batch_size,
            columns=D.TWO_TOWER_COLUMNS,
            positives_only=True,
            shuffle_rows=shuffle_rows,
            seed=[SEED, 0, ordinal],
        ):
            if tbl.num_rows >= 2:  # in-batch softmax needs negatives (as the loop)
                out.append(D.to_batch(tbl, voc, item_frequency=counts.positives, cross=False))
    return out, voc


def model_config(voc: object, dim: int) -> dict:
    """The two-tower config the trainer builds from ``voc`` (``TwoTowerTrainConfig`` defaults)."""
    from recassets.models.two_tower import TwoTowerConfig
    from recassets.training.loop import table_specs
    from recassets.training.schema import ITEM_DENSE, USER_DENSE

    return TwoTowerConfig(
        tables=table_specs(voc, dim),
        user_features=D.USER_FEATURES,
        item_features=D.ITEM_FEATURES,
        num_user_dense=len(USER_DENSE),
        num_item_dense=len(ITEM_DENSE),
        dim=dim,
        hidden=(128,),
    ).to_dict()


# --- ours: the model step -----------------------------------------------------------------------


def ours_model(config: dict, device: str, embedding_optimizer: str = "fused_rowwise_adagrad"):
    """Our ``TwoTower``, seeded as the trainer seeds it (so the initial weights are its)."""
    from recassets.training.inference import build_model

    torch.manual_seed(SEED)
    return build_model(
        "two_tower",
        config,
        torch.device(device),
        embedding_optimizer=embedding_optimizer,
        embedding_lr=EMBEDDING_LR,
    )


def ours_stepper(model) -> Step:
    """The loop's step (``recassets.training.loop._fit``) on a ``D.Batch``."""
    from recassets.models.embeddings import dense_parameters

    loss_fn = SampledSoftmaxLoss(TEMPERATURE)
    opt = torch.optim.Adam(dense_parameters(model), lr=DENSE_LR)

    def step(b: D.Batch) -> float:
        user, item = model(b.features)
        loss = loss_fn(user, item, b.item_log_q, b.item_ids)
        opt.zero_grad(set_to_none=True)
        model.embeddings.zero_grad()
        loss.backward()  # the fused embedding update happens here
        opt.step()
        model.embeddings.step()
        return float(loss.detach())

    return step


# --- the baselines: the same model and algorithm in plain PyTorch --------------------------------


class RowWiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad on sparse gradients, fbgemm's ``EXACT_ROWWISE_ADAGRAD`` (weight decay
    0): a row's gradients in the batch are summed (``coalesce``), its accumulator grows by the
    mean of their squares, and ``w -= lr * g / (sqrt(acc) + eps)``."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.coalesce()
                rows, values = g.indices()[0], g.values()  # (N,), (N, E)
                acc = self.state[p].setdefault("sum", p.new_zeros(p.shape[0]))  # (rows,)
                row_acc = acc[rows] + values.pow(2).mean(1)  # rows are unique after coalesce
                acc[rows] = row_acc
                scale = (row_acc.sqrt() + group["eps"]).unsqueeze(1)
                p.index_add_(0, rows, values / scale, alpha=-group["lr"])


@dataclass
class PlainBatch:
    """A ``D.Batch`` as ``nn.EmbeddingBag`` takes it: per feature (values, offsets incl. the
    last), prebuilt outside the timing as the KJT of our step is."""

    sparse: dict[str, tuple[torch.Tensor, torch.Tensor]]
    user_dense: torch.Tensor
    item_dense: torch.Tensor
    log_q: torch.Tensor
    item_ids: torch.Tensor

    @classmethod
    def of(cls, b: D.Batch) -> PlainBatch:
        jts = b.features.sparse.to_dict()
        return cls(
            {k: (jt.values(), jt.offsets()) for k, jt in jts.items()},
            b.features.user_dense,
            b.features.item_dense,
            b.item_log_q,
            b.item_ids,
        )


class PlainTower(nn.Module):
    """Mean-pooled bags + signed log1p dense -> Linear/ReLU -> Linear -> (B, D), unit norm
    (the math of ``recassets.models.two_tower.Tower``)."""

    def __init__(self, bags: nn.ModuleDict, tables: dict[str, str], ours: nn.Module) -> None:
        super().__init__()
        self.bags, self.tables, self.features = bags, tables, ours.features
        linears = [m for m in ours.modules() if isinstance(m, nn.Linear)]
        layers: list[nn.Module] = []
        for lin in linears:
            plain = nn.Linear(lin.in_features, lin.out_features, device=lin.weight.device)
            plain.load_state_dict(lin.state_dict())
            layers += [plain, nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])  # ReLU after every hidden layer, not the output

    def forward(self, sparse: dict, dense: torch.Tensor) -> torch.Tensor:
        pooled = [self.bags[self.tables[f]](*sparse[f]) for f in self.features]
        x = torch.cat([*pooled, torch.sign(dense) * torch.log1p(dense.abs())], dim=1)
        return F.normalize(self.mlp(x), dim=1)


class PlainTwoTower(nn.Module):
    """``nn.EmbeddingBag(mode="mean", sparse=True)`` tables and plain towers, with the shapes
    and initial weights of ``ours`` (a freshly built ``TwoTower``)."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.bags = nn.ModuleDict(
            {
                t.name: nn.EmbeddingBag.from_pretrained(
                    ours.embeddings.weight(t.name).detach().clone(),
                    freeze=False,
                    mode="mean",
                    sparse=True,
                    include_last_offset=True,
                )
                for t in ours.config.tables
            }
        )
        tables = {f: t.name for t in ours.config.tables for f in t.features}
        self.user = PlainTower(self.bags, tables, ours.user_tower)
        self.item = PlainTower(self.bags, tables, ours.item_tower)


def plain_stepper(ours: nn.Module, embedding_optimizer: str) -> Step:
    """The loop's step on a ``PlainBatch`` with ``embedding_optimizer`` (``rowwise_adagrad``:
    ours above; ``adagrad``: ``torch.optim.Adagrad``) on the sparse gradients."""
    model = PlainTwoTower(ours)
    emb = list(model.bags.parameters())
    dense = [p for n, p in model.named_parameters() if not n.startswith("bags.")]
    make = {"rowwise_adagrad": RowWiseAdagrad, "adagrad": torch.optim.Adagrad}[embedding_optimizer]
    emb_opt = make(emb, lr=EMBEDDING_LR, eps=EPS)
    opt = torch.optim.Adam(dense, lr=DENSE_LR)
    loss_fn = SampledSoftmaxLoss(TEMPERATURE)

    def step(b: PlainBatch) -> float:
        user = model.user(b.sparse, b.user_dense)
        item = model.item(b.sparse, b.item_dense)
        loss = loss_fn(user, item, b.log_q, b.item_ids)
        opt.zero_grad(set_to_none=True)
        emb_opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        emb_opt.step()
        return float(loss.detach())

    return step


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Pass:
    examples_per_s: float
    loss: float  # mean over the pass, weighted by batch size (the trainer's metrics["loss"])
    first_loss: float | None


def timed_pass(step: Step, batches: list, sizes: list[int], device: str) -> Pass:
    """One pass of ``step`` over ``batches``, timed as the trainer times its loop."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    losses = [step(b) for b in batches]
    sync()
    elapsed = time.perf_counter() - t
    n = sum(sizes)
    mean = sum(v * s for v, s in zip(losses, sizes, strict=True)) / n
    return Pass(n / elapsed, mean, losses[0])


VARIANTS = {
    "model step, fused row-wise Adagrad": None,  # ours (printed with the optimizer it ran)
    "plain EmbeddingBag, row-wise Adagrad": "rowwise_adagrad",
    "plain EmbeddingBag, torch Adagrad": "adagrad",
}
TRAINER = "trainer end to end (Delta)"


def run_rounds(
    path: str, days: list[str], batch: int, dim: int, threads: int | None, rounds: int, device: str
) -> tuple[dict[str, list[Pass]], object, str, int]:
    """Round 0 (warm-up, dropped) + ``rounds`` interleaved rounds of every variant. Returns
    their passes, the trainer's last checkpoint, the embedding optimizer our step ran, and the
    number of steps a pass."""
    from recassets.training.loop import TrainConfig, TwoTowerTrainConfig, train_two_tower

    batches, voc = trainer_batches(path, days, batch)
    sizes = [len(b) for b in batches]
    config = model_config(voc, dim)
    ours_in = [b.to(device) for b in batches]
    plain_in = [PlainBatch.of(b) for b in ours_in]
    train_config = TrainConfig(
        epochs=1,
        batch_size=batch,
        num_threads=threads,
        device=device,
        two_tower=TwoTowerTrainConfig(dim=dim),
    )
    runs: dict[str, list[Pass]] = {k: [] for k in (TRAINER, *VARIANTS)}
    ckpt, kind = None, ""
    order = list(VARIANTS.items())
    for r in range(rounds + 1):
        ckpt = train_two_tower(path, days, train_config)
        m = ckpt.metrics
        runs[TRAINER].append(Pass(m["examples_per_s"], m["loss"], None))
        # the variants' order rotates each round (no variant always runs after the trainer)
        for name, plain in order[r % len(order) :] + order[: r % len(order)]:
            model = ours_model(config, device)  # fresh: a plain variant copies its weights
            kind = model.embeddings.optimizer_kind
            if plain is None:
                step, inputs = ours_stepper(model), ours_in
            else:
                step, inputs = plain_stepper(model, plain), plain_in
            del model
            runs[name].append(timed_pass(step, inputs, sizes, device))
            del step
            gc.collect()
    return {k: v[1:] for k, v in runs.items()}, ckpt, kind, len(batches)


# --- report -------------------------------------------------------------------------------------


def report(
    runs: dict[str, list[Pass]], kind: str, loss_tol: float, trainer_tol: float = 1e-6
) -> None:
    """Each figure beside its baseline, the ratios, and the loss check (``trainer_tol``: the
    relative gap allowed between the trainer and the step: none but rounding on the CPU, whose
    runs are deterministic; more on CUDA, whose are not)."""
    best = {k: max(p.examples_per_s for p in v) for k, v in runs.items()}
    med = {k: statistics.median(p.examples_per_s for p in v) for k, v in runs.items()}
    step, rowwise, adagrad = VARIANTS
    label = {**{k: k for k in runs}, step: f"model step, {kind}"}
    vs = {
        rowwise: f"model step {best[step] / best[rowwise]:.2f}x this (same algorithm)",
        adagrad: f"model step {best[step] / best[adagrad]:.2f}x this (element-wise Adagrad)",
        TRAINER: f"{best[TRAINER] / best[step]:.2f}x the model step (same batches)",
    }
    print(f"{'examples/s':44s} {'best':>9s} {'median':>9s}")
    for name in (step, rowwise, adagrad, TRAINER):
        print(f"{label[name]:44s} {best[name]:9.0f} {med[name]:9.0f}   {vs.get(name, '')}")

    last = {k: v[-1] for k, v in runs.items()}
    ref = last[step].loss
    print(f"\n{'loss (last round)':44s} {'pass mean':>9s} {'step 1':>9s}   vs the model step")
    for name in (step, rowwise, adagrad, TRAINER):
        p = last[name]
        first = "" if p.first_loss is None else f"{p.first_loss:9.4f}"
        print(f"{label[name]:44s} {p.loss:9.4f} {first:>9s}   {(p.loss - ref) / ref:+.1e}")
    same = abs(last[TRAINER].loss - ref) <= trainer_tol * abs(ref)
    print(
        "  trainer vs model step: "
        + ("the same loss: the step trained on the trainer's batches from its weights" if same else
           "LOSSES DIFFER: the step did not see the trainer's batches or initial weights")
    )  # fmt: skip
    gap = abs(last[rowwise].loss - ref) / abs(ref)
    print(
        f"  plain row-wise Adagrad vs the fused step: {gap:.1e} apart "
        + (f"(<= {loss_tol}: comparable, the same algorithm)" if gap <= loss_tol else
           f"DIVERGED (> {loss_tol}): they are not the same algorithm")
    )  # fmt: skip
    gap = abs(last[adagrad].loss - ref) / abs(ref)
    print(f"  torch Adagrad vs the fused step: {gap:.1e} apart (its accumulator is per element)")

    print(
        f"\n{'model step / plain, same algorithm':44s} {best[step] / best[rowwise]:9.2f}x"
        "   (target >= 1.3)"
    )
    print(
        f"{'trainer end to end / model step':44s} {best[TRAINER] / best[step]:9.2f}x"
        "   (target >= 0.7: the data path costs at most 30%)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--days", type=int, default=2, help="planted days trained")
    ap.add_argument("--users", type=int, default=4000, help="planted users per day")
    ap.add_argument("--items", type=int, default=20_000, help="planted items")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loss-tol", type=float, default=0.01)
    ap.add_argument("--quality", action="store_true", help="also Recall@50 vs popularity")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # as the trainer runs on the CPU (recassets.training.loop._reproducible)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # torch.optim.Adagrad's sparse path builds COO tensors; the notice is about checks, not us
    warnings.filterwarnings("ignore", message="Sparse invariant checks")

    with tempfile.TemporaryDirectory() as tmp:
        path = write_planted(tmp, a.days + (1 if a.quality else 0), a.users, a.items)
        days = planted_days(a.days)
        runs, ckpt, kind, steps = run_rounds(path, days, a.batch, a.dim, a.threads, a.rounds, "cpu")
        print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, dim={a.dim}, "
              f"batch={a.batch}, {a.days} planted days x {a.users} users: {steps} steps, "
              f"{ckpt.metrics['examples']} positives a pass; {a.rounds} rounds after a warm-up\n")  # fmt: skip
        report(runs, kind, a.loss_tol)

        if a.quality:
            from recassets.training.evaluation import evaluate

            rep = evaluate(path, ckpt, None, k=50)
            for policy in ("candidate", "popularity_trailing_7d", "popularity_all_time"):
                print(f"{'Recall@50 ' + policy:44s} {rep.retrieval[policy]['recall@50']:9.4f}")


if __name__ == "__main__":
    main()
