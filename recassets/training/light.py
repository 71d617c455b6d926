"""The L1 light ranker: a small MLP that cuts the retrieved candidates to the few the heavy
ranker scores.

The funnel (seed talk: "a light ranker cuts thousands to hundreds, a heavy ranker orders those")
retrieves N candidates, scores every one with this model, keeps the top ``keep`` (default 200)
and gives only those to the DCN-v2 (``funnel.recommender``): the heavy ranker's cost per
request is then fixed by ``keep``, not by N.

Inputs, per (user, candidate): the two-tower's dot product (retrieval already computed it, so
it is free at serving) and the item's counters of the day before (``schema.ITEM_DENSE``: the
item block holds them in memory), each through a signed log1p and standardised with the
training rows' mean and standard deviation. One hidden layer of ``HIDDEN`` units (ReLU): about
``8 x 16 + 16`` multiply-adds a candidate, against the DCN-v2's tens of thousands.

Training: BCE on the rows of ``training_examples`` of the two-tower's training days (the
ranker's own examples: positives against impressions or sampled negatives), at most
``MAX_ROWS`` of them (a seeded sample), with the two-tower that serves beside it scoring each
row. Those are the days that two-tower trained on, so its score of a positive is somewhat
inflated there; the light ranker only decides what the heavy ranker sees, and
``model_evaluation`` measures the cascade on held-out days against the heavy ranker over every
candidate (the cut may cost at most 1 % NDCG@10, docs/training-and-the-gate.md).

The file: one ``.npz`` (arrays only, ``allow_pickle=False``), written atomically and never
overwritten, its fit's facts in a JSON ``meta`` (the two-tower it reads, the days, the rows,
held-out AUC).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import recassets
from recassets import atomic
from recassets.paths import Paths
from recassets.training import npz_store
from recassets.training.schema import ITEM_DENSE

FEATURES = ("two_tower", *ITEM_DENSE)
HIDDEN = 16
KEEP = 200  # candidates the heavy ranker scores
# The light stage's weight in the cascade's final order (``fuse``): both stages' scores
# standardised over the kept and summed, equal weights. The light ranker reads the two-tower's
# score, which the heavy ranker never sees, and the heavy ranker was trained on impressions (or
# ratings), not on retrieved candidates: alone it orders them worse than the light ranker does
# (docs/training-and-the-gate.md has the figures). Equal weights on a common scale need no
# tuning and follow the models' scales as they are retrained.
WEIGHT = 1.0
MAX_ROWS = 300_000
EPOCHS = 4
BATCH = 1024
FORMAT = 1
KIND = "light_ranker"


class NotEnoughData(ValueError):
    """The rows cannot train a light ranker (no positives or no negatives, too few rows): the
    funnel then runs without the cut, as before it existed."""


def transform(two_tower: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """(N, F) raw inputs: the dot products (N,) beside the item counters (N, len(ITEM_DENSE)),
    the counters through sign(x) log1p(|x|) (counts span orders of magnitude; CTRs barely
    move). NaN (a missing counter) reads 0, as the item block's defaults do."""
    d = np.nan_to_num(np.asarray(dense, dtype=np.float32), nan=0.0)
    d = np.sign(d) * np.log1p(np.abs(d))
    t = np.nan_to_num(np.asarray(two_tower, dtype=np.float32), nan=0.0)
    return np.concatenate([t.reshape(-1, 1), d.reshape(len(t), -1)], axis=1)


@dataclass
class LightRanker:
    """A standardising layer, one hidden ReLU layer and a linear output (a logit)."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)
    w1: np.ndarray  # (F, H)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H,)
    b2: float
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def score(self, two_tower: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """(N,) logits; numpy float32, two small matrix products."""
        x = (transform(two_tower, dense) - self.mean) / self.std
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        return (h @ self.w2 + np.float32(self.b2)).astype(np.float32)

    def prepare(self, dense: np.ndarray) -> np.ndarray:
        """(M, H) the item half of the hidden layer's input for M items' counters: done once
        per catalog (counters change once a day), so that a request pays for a gather of N
        rows and one product with its dot products (``score_prepared``)."""
        x = transform(np.zeros(len(dense), np.float32), dense)
        z = (x[:, 1:] - self.mean[1:]) / self.std[1:]
        return (z @ self.w1[1:] + self.b1).astype(np.float32)

    def score_prepared(self, two_tower: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        """(N,) logits from the candidates' dot products and their ``prepare``d rows; equal
        to ``score`` up to float rounding."""
        t = (np.asarray(two_tower, np.float32) - self.mean[0]) / self.std[0]
        h = np.maximum(prepared + t[:, None] * self.w1[0], 0.0)
        return (h @ self.w2 + np.float32(self.b2)).astype(np.float32)

    def keep(
        self,
        ids: np.ndarray,
        two_tower: np.ndarray,
        dense: np.ndarray | None,
        n: int = KEEP,
        *,
        prepared: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions into ``ids`` of the ``n`` best by this model, in the candidates' order
        (retrieval's), so that what follows sees them as it would have, and this model's
        logits of them (for ``fuse``). The candidates' counters as ``dense``, or their
        ``prepare``d rows."""
        if prepared is not None:
            s = self.score_prepared(two_tower, prepared)
        else:
            assert dense is not None, "dense or prepared rows"
            s = self.score(two_tower, dense)
        top = np.arange(len(ids)) if len(ids) <= n else np.sort(np.argpartition(-s, n - 1)[:n])
        return top, s[top]

    def flops_per_candidate(self, prepared: bool = True) -> int:
        """Floating-point operations (2 per multiply-add) of one candidate: served with its
        item half ``prepare``d (the dot product's column and the output layer), else the
        whole forward."""
        f, h = self.w1.shape
        return 2 * h + 2 * h + 2 if prepared else 2 * (f * h + h) + 2 * f

    # --- fit ------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        two_tower: np.ndarray,
        dense: np.ndarray,
        labels: np.ndarray,
        *,
        hidden: int = HIDDEN,
        epochs: int = EPOCHS,
        batch_size: int = BATCH,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> LightRanker:
        """BCE on (dot product, counters) -> label; a tenth of the rows (seeded) is held out
        and its AUC recorded (``meta["holdout_auc"]``, beside that of the dot product alone)."""
        import torch

        from recassets.models.metrics import roc_auc

        x = transform(two_tower, dense)
        y = np.asarray(labels, dtype=np.float32).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} rows of features for {len(y)} labels")
        if len(y) < 20 or y.min() == y.max():
            raise NotEnoughData(
                f"the light ranker needs positives and negatives: {len(y)} row(s), "
                f"{int(y.sum())} positive"
            )
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        cut = max(1, len(y) // 10)
        held, train = order[:cut], order[cut:]
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        z = ((x - mean) / std).astype(np.float32)
        gen = torch.Generator().manual_seed(seed)
        l1 = torch.nn.Linear(z.shape[1], hidden)
        l2 = torch.nn.Linear(hidden, 1)
        with torch.no_grad():  # seeded initialisation, whatever the global RNG
            for layer in (l1, l2):
                bound = 1 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.zero_()
        net = torch.nn.Sequential(l1, torch.nn.ReLU(), l2)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        zt, yt = torch.from_numpy(z[train]), torch.from_numpy(y[train])
        loss = torch.zeros(())
        for _ in range(epochs):
            perm = torch.randperm(len(train), generator=gen)
            for s in range(0, len(train), batch_size):
                b = perm[s : s + batch_size]
                opt.zero_grad()
                loss = loss_fn(net(zt[b]).squeeze(1), yt[b])
                loss.backward()
                opt.step()
        model = cls(
            mean.astype(np.float32), std,
            l1.weight.detach().numpy().T.copy(), l1.bias.detach().numpy().copy(),
            l2.weight.detach().numpy()[0].copy(), float(l2.bias.detach().numpy()[0]),
        )  # fmt: skip
        model.meta = {
            "format": FORMAT,
            "features": list(FEATURES),
            "hidden": hidden,
            "epochs": epochs,
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "holdout_auc": roc_auc(model.score(two_tower[held], dense[held]), y[held]),
            "holdout_auc_two_tower": roc_auc(np.asarray(two_tower)[held], y[held]),
            "last_loss": float(loss.item()),
            "code_version": recassets.__version__,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **(meta or {}),
        }
        return model

    # --- file -----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, exclusive: bool = False) -> str:
        def write(f: Any) -> None:
            np.savez(
                f, mean=self.mean, std=self.std, w1=self.w1, b1=self.b1, w2=self.w2,
                b2=np.asarray(self.b2, np.float32),
                meta=np.asarray(json.dumps(self.meta, sort_keys=True)),
            )  # fmt: skip

        atomic.write_with(Path(path), write, exclusive=exclusive)
        self.path = str(path)
        return str(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LightRanker:
        """Refuses (``DamagedArtifactError``, naming the file) what is not a light ranker:
        not an npz, arrays missing, or shapes that do not fit together."""
        from recassets.training.checkpoint import DamagedArtifactError, check_zip

        try:
            check_zip(path)
            with np.load(path, allow_pickle=False) as z:
                m = cls(
                    z["mean"].astype(np.float32), z["std"].astype(np.float32),
                    z["w1"].astype(np.float32), z["b1"].astype(np.float32),
                    z["w2"].astype(np.float32), float(z["b2"]),
                    json.loads(str(z["meta"])), str(path),
                )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            raise DamagedArtifactError(f"{path}: not a light-ranker file ({e})") from e
        f = len(FEATURES)
        if (
            m.mean.shape != (f,) or m.std.shape != (f,) or m.w1.ndim != 2
            or m.w1.shape[0] != f or m.b1.shape != (m.w1.shape[1],) or m.w2.shape != m.b1.shape
            or not all(np.isfinite(a).all() for a in (m.mean, m.std, m.w1, m.b1, m.w2))
        ):  # fmt: skip
            raise DamagedArtifactError(f"{path}: inconsistent light-ranker arrays")
        return m


# --- the versioned store -----------------------------------------------------------------------


def versions(paths: Paths) -> list[Path]:
    """Saved fits under ``<artifacts>/models/light_ranker/``, oldest first."""
    return npz_store.versions(paths, KIND)


def latest_for(paths: Paths, two_tower_path: str | os.PathLike[str] | None) -> str | None:
    """The newest light ranker fitted on ``two_tower_path``'s scores (None: none was): one
    trained on another two-tower's scores would cut on a score it never saw. Both paths are
    read in this home (``policy.in_home``): in a home copied or restored elsewhere the
    recorded path names the original home, and the match failed; the evaluation then
    dropped the light ranker and re-promoted without it, with no new data (probe,
    2026-12-06)."""
    from recassets.training.policy import in_home

    if two_tower_path is None:
        return None
    wanted = in_home(paths, str(two_tower_path))
    for p in reversed(versions(paths)):
        recorded = LightRanker.load(p).meta.get("two_tower")
        if recorded is not None and in_home(paths, str(recorded)) == wanted:
            return str(p)
    return None


def example_scores(
    two_tower_path: str | os.PathLike[str], rows: pa.Table, *, device: Any = None
) -> np.ndarray:
    """(R,) the two-tower's dot product of each ``training_examples`` row (its user as of the
    day before, its item's features of the day before)."""
    from recassets.training import inference

    _, u = inference.user_embeddings(two_tower_path, rows, device=device)
    _, v = inference.item_embeddings(two_tower_path, rows, device=device)
    return np.einsum("ij,ij->i", u, v).astype(np.float32)


def fit_examples(
    source: Any,
    two_tower_path: str | os.PathLike[str],
    *,
    max_rows: int = MAX_ROWS,
    hidden: int = HIDDEN,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> LightRanker:
    """A fit on the ``training_examples`` rows (``source``: a ``Paths`` or the table's path)
    of the two-tower's training days, each scored by that two-tower."""
    from recassets.lake import open_delta
    from recassets.training.checkpoint import Checkpoint
    from recassets.training.evaluation import ITEM_COLUMNS, USER_COLUMNS, read_days
    from recassets.training.examples import table_path

    tt_path = str(two_tower_path)
    days = list(Checkpoint.load(tt_path).partitions)
    if not days:
        raise NotEnoughData(f"the two-tower {tt_path} consumed no partitions")
    version = open_delta(table_path(source)).version()
    columns = dict.fromkeys([*USER_COLUMNS, *ITEM_COLUMNS, "label"])
    rows = read_days(source, days, list(columns))
    if rows.num_rows > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(rows.num_rows, max_rows, replace=False))
        rows = rows.take(pa.array(pick))
    tt = example_scores(tt_path, rows)
    dense = np.stack([rows[c].to_numpy(zero_copy_only=False) for c in ITEM_DENSE], axis=1)
    settings = {"max_rows": max_rows, "hidden": hidden, "epochs": epochs, "seed": seed}
    return LightRanker.fit(
        tt, dense, rows["label"].to_numpy(zero_copy_only=False), hidden=hidden, epochs=epochs,
        seed=seed, meta={"two_tower": tt_path, "partitions": days,
                         "table": str(table_path(source)), "table_version": version, **settings},
    )  # fmt: skip


def train_next(
    paths: Paths,
    two_tower_path: str | os.PathLike[str],
    *,
    max_rows: int = MAX_ROWS,
    hidden: int = HIDDEN,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> tuple[LightRanker, str, bool]:
    """Fit on (a seeded sample of at most ``max_rows`` of) the rows of the two-tower's training
    days, scored by that two-tower, and save the next version; a fit of the same two-tower
    file and settings is not repeated. Returns (model, path, new version?)."""
    tt_path = str(two_tower_path)
    settings = {"max_rows": max_rows, "hidden": hidden, "epochs": epochs, "seed": seed}
    done = npz_store.last_if(paths, KIND, LightRanker.load, {"two_tower": tt_path, **settings})
    if done is not None:
        return *done, False
    model = fit_examples(paths, tt_path, **settings)
    return model, npz_store.save_next(paths, KIND, lambda p: model.save(p, exclusive=True)), True


def _z(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    sd = float(v.std()) if len(v) else 0.0
    return (v - v.mean()) / sd if sd > 0 else np.zeros_like(v)


def fuse(
    heavy: np.ndarray,
    light: np.ndarray,
    weight: float = WEIGHT,
    similarity: np.ndarray | None = None,
    similarity_weight: float = 0.0,
) -> np.ndarray:
    """The cascade's final score of the kept candidates: the heavy ranker's logits and the
    light ranker's, each standardised over the kept (mean 0, standard deviation 1; a constant
    stage adds nothing), summed with the light stage weighted by ``weight`` (0: the heavy
    ranker's order alone); with ``similarity`` (the item similarity's score of each kept
    candidate for the user's seen items) its standardised score weighted by
    ``similarity_weight`` is added too."""
    sim = similarity if similarity_weight else None
    if not weight and sim is None:
        return np.asarray(heavy, dtype=np.float64)
    out = _z(heavy) + weight * _z(light)
    return out if sim is None else out + similarity_weight * _z(sim)


def cascade(
    ids: Sequence[int],
    light_scores: np.ndarray,
    heavy_scores: np.ndarray,
    keep: int = KEEP,
    weight: float = WEIGHT,
    similarity: np.ndarray | None = None,
    similarity_weight: float = 0.0,
) -> list[int]:
    """The funnel's order of ``ids`` scored by both stages: the light ranker's top ``keep``,
    ordered by ``fuse`` of the two stages' scores (and ``similarity``'s, per id, when given;
    ties: the lower id); what evaluation scores."""
    a = np.asarray(ids, dtype=np.int64)
    light = np.asarray(light_scores, dtype=np.float64)
    cut = light
    if similarity is not None and similarity_weight:  # the cut weighs the similarity too
        cut = _z(light) + similarity_weight * _z(np.asarray(similarity, dtype=np.float64))
    kept = np.arange(len(a)) if len(a) <= keep else np.argpartition(-cut, keep - 1)[:keep]
    sim = None if similarity is None else np.asarray(similarity, dtype=np.float64)[kept]
    score = fuse(np.asarray(heavy_scores, dtype=np.float64)[kept], light[kept], weight,
                 sim, similarity_weight)  # fmt: skip
    return [int(a[kept[o]]) for o in np.lexsort((a[kept], -score))]
