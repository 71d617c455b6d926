"""The L1 light ranker: what it learns, its file, its cut, and the cascade in evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from recassets.models.metrics import roc_auc
from recassets.training import evaluation as E
from recassets.training import light as L
from recassets.training.checkpoint import DamagedArtifactError
from recassets.training.report import LIGHT, RANKER_ALL, SERVED
from recassets.training.schema import ITEM_DENSE

from .test_checkpoint import flipped
from .test_evaluation import lake  # noqa: F401  (the planted table and its models)

E7 = ITEM_DENSE.index("i_engagements_7d")


def world(n: int = 4000, seed: int = 0):
    """Rows whose label follows the dot product and the item's 7-day engagements (a count
    over orders of magnitude), with noise; the other counters are noise."""
    rng = np.random.default_rng(seed)
    tt = rng.normal(size=n).astype(np.float32)
    dense = rng.exponential(5.0, size=(n, len(ITEM_DENSE))).astype(np.float32)
    dense[:, E7] = rng.lognormal(2.0, 1.5, size=n)
    logit = 1.5 * tt + 1.2 * (np.log1p(dense[:, E7]) - 2.0) + rng.logistic(size=n) * 0.5
    return tt, dense, (logit > 0).astype(np.int32)


def test_it_learns_the_signal_and_nothing_from_shuffled_labels():
    tt, dense, y = world()
    model = L.LightRanker.fit(tt, dense, y, seed=1)
    t2, d2, y2 = world(seed=9)  # fresh rows
    auc = roc_auc(model.score(t2, d2), y2)
    assert auc > 0.9 and model.meta["holdout_auc"] > 0.9
    # more than the dot product alone: it learned the counter too
    assert auc > roc_auc(t2, y2) + 0.05
    shuffled = L.LightRanker.fit(tt, dense, np.random.default_rng(3).permutation(y), seed=1)
    assert abs(roc_auc(shuffled.score(t2, d2), y2) - 0.5) < 0.1
    with pytest.raises(L.NotEnoughData, match="positives and negatives"):
        L.LightRanker.fit(tt, dense, np.zeros_like(y))


def test_the_file_round_trips_and_a_damaged_one_is_refused(tmp_path):
    tt, dense, y = world(800)
    model = L.LightRanker.fit(tt, dense, y, epochs=1)
    path = model.save(tmp_path / "0001.npz", exclusive=True)
    back = L.LightRanker.load(path)
    np.testing.assert_array_equal(back.score(tt, dense), model.score(tt, dense))
    assert back.meta["rows"] == 800 and back.path == path
    with pytest.raises(FileExistsError):
        model.save(path, exclusive=True)  # a version is never overwritten
    (tmp_path / "cut.npz").write_bytes(open(path, "rb").read()[:200])
    with pytest.raises(DamagedArtifactError, match="cut.npz"):
        L.LightRanker.load(tmp_path / "cut.npz")
    w1 = np.load(path)["w1"].tobytes()  # 8 bytes of the weights changed, the zip intact
    data = open(path, "rb").read()
    at = data.index(w1) + len(w1) // 2
    (tmp_path / "changed.npz").write_bytes(flipped(data, at))
    with pytest.raises(DamagedArtifactError, match="changed.npz.*CRC-32"):
        L.LightRanker.load(tmp_path / "changed.npz")
    np.savez(tmp_path / "shape.npz", mean=np.zeros(3), std=np.ones(3), w1=np.zeros((3, 4)),
             b1=np.zeros(4), w2=np.zeros(4), b2=np.zeros(()), meta=np.asarray("{}"))  # fmt: skip
    with pytest.raises(DamagedArtifactError, match="inconsistent"):
        L.LightRanker.load(tmp_path / "shape.npz")


def test_prepared_rows_score_as_the_full_forward():
    tt, dense, y = world(1500)
    model = L.LightRanker.fit(tt, dense, y, epochs=1)
    pre = model.prepare(dense)
    assert pre.shape == (1500, L.HIDDEN)
    np.testing.assert_allclose(model.score_prepared(tt, pre), model.score(tt, dense), atol=1e-4)
    ids = np.arange(1500)
    assert list(model.keep(ids, tt, None, 40, prepared=pre)[0]) == list(
        model.keep(ids, tt, dense, 40)[0]
    )
    # rows of other items give other scores: the gather matters
    assert not np.allclose(model.score_prepared(tt, pre[::-1]), model.score(tt, dense), atol=1e-2)


def test_keep_cuts_to_the_best_in_retrieval_order_and_the_cascade_orders_by_the_heavy_stage():
    tt, dense, y = world(2000)
    model = L.LightRanker.fit(tt, dense, y, epochs=1)
    ids = np.arange(100, 400, dtype=np.int64)
    t, d = tt[:300], dense[:300]
    kept, kept_logits = model.keep(ids, t, d, 50)
    s = model.score(t, d)
    assert len(kept) == 50 and list(kept) == sorted(kept)  # retrieval's order
    assert s[kept].min() >= np.sort(s)[-50]  # the 50 best by the light score
    np.testing.assert_allclose(kept_logits, s[kept])  # with their logits
    assert list(model.keep(ids[:20], t[:20], d[:20], 50)[0]) == list(range(20))  # fewer: all
    heavy = -np.arange(300, dtype=np.float64)  # the heavy stage prefers the first ids
    order = L.cascade(ids, s, heavy, 50, weight=0.0)
    assert set(order) == set(ids[kept].tolist())
    assert order == sorted(order)  # the heavy stage's order among the kept
    assert L.cascade(ids, s, heavy, 500, weight=0.0) == ids.tolist()  # no cut: the heavy order
    # fused (the default): the same kept, ordered by both stages' standardised scores
    fused = L.cascade(ids, s, heavy, 50)
    assert set(fused) == set(order) and fused != order
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    want = z(heavy[kept]) + L.WEIGHT * z(s[kept].astype(np.float64))
    assert fused == ids[kept][np.lexsort((ids[kept], -want))].tolist()
    # a light stage far heavier than the heavy one: the light ranker's order
    light_order = ids[kept][np.lexsort((ids[kept], -s[kept]))].tolist()
    assert L.cascade(ids, s, heavy, 50, weight=1e6) == light_order


def test_fuse_standardises_each_stage_and_ignores_a_constant_one():
    heavy, light = np.array([3.0, 1.0, 2.0]), np.array([10.0, 30.0, 20.0])
    np.testing.assert_allclose(L.fuse(heavy, light, 1.0), [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(L.fuse(heavy, light, 0.0), heavy)  # 0: the heavy logits as they are
    flat = L.fuse(heavy, np.full(3, 7.0), 1.0)  # a constant light stage adds nothing
    assert np.argsort(-flat).tolist() == [0, 2, 1]
    assert L.fuse(heavy, light, 2.0).argmax() == 1  # the light stage, weighted up, wins


def test_fuse_adds_the_item_similarity_standardised_and_weighted():
    heavy, light = np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0])
    sim = np.array([0.0, 0.0, 0.5])  # only the third candidate is similar to the user's items
    both = L.fuse(heavy, light, 1.0)
    np.testing.assert_allclose(L.fuse(heavy, light, 1.0, sim, 0.0), both)  # weight 0: unchanged
    np.testing.assert_allclose(L.fuse(heavy, light, 1.0, None, 2.0), both)  # no scores: unchanged
    assert L.fuse(heavy, light, 1.0, sim, 1.0).argmax() == 2  # the similar one wins the tie
    # without the light stage the heavy logits are standardised before the similarity joins
    only_heavy = L.fuse(heavy, light, 0.0, sim, 1.0)
    z = (heavy - heavy.mean()) / heavy.std()
    np.testing.assert_allclose(only_heavy, z + (sim - sim.mean()) / sim.std())
    ids = np.array([7, 8, 9])
    assert L.cascade(ids, light, heavy, 3, 1.0, sim, 1.0)[0] == 9
    assert L.cascade(ids, light, heavy, 3, 1.0)[0] == 7  # the tie without it: the lower id
    # the cut weighs the similarity too: the light ranker alone keeps 8 and 9, with the
    # similarity 7, the one item similar to the user's, displaces 8
    four, cut, rk = np.array([6, 7, 8, 9]), np.array([0.0, 1.0, 3.0, 4.0]), np.zeros(4)
    sim4 = np.array([0.0, 5.0, 0.0, 0.0])
    assert sorted(L.cascade(four, cut, rk, 2, 1.0)) == [8, 9]
    assert sorted(L.cascade(four, cut, rk, 2, 1.0, sim4, 1.0)) == [7, 9]


def test_evaluate_scores_the_cascade_beside_the_heavy_ranker_over_all(lake):  # noqa: F811
    path, tt, rk = lake
    model = L.fit_examples(path, tt.path, epochs=2)
    assert model.meta["two_tower"] == tt.path and model.meta["rows"] > 100
    report = E.evaluate(path, tt.path, rk.path, k=10, light=model, light_pool=60, light_keep=20,
                        bootstrap=0)  # fmt: skip
    assert {SERVED, RANKER_ALL, LIGHT} <= set(report.retrieval)
    assert report.light_pool == 60 and report.light_keep == 20
    served, every = report.retrieval[SERVED], report.retrieval[RANKER_ALL]
    assert served["user_days"] == every["user_days"] > 0
    # no cut (keep >= pool) and no light weight: the cascade is the heavy ranker over all,
    # metric for metric; with the default weight both stages order it, another ranking
    same = E.evaluate(path, tt.path, rk.path, k=10, light=model, light_pool=60, light_keep=60,
                      bootstrap=0, light_weight=0.0)  # fmt: skip
    assert same.retrieval[SERVED]["recall@10"] == pytest.approx(
        same.retrieval[RANKER_ALL]["recall@10"]
    )
    assert same.light_weight == 0.0 and "the DCN-v2 orders them" in same.to_markdown()
    fused = E.evaluate(path, tt.path, rk.path, k=10, light=model, light_pool=60, light_keep=60,
                       bootstrap=0)  # fmt: skip
    assert fused.light_weight == L.WEIGHT and "standardised scores" in fused.to_markdown()
    assert fused.retrieval[SERVED]["ndcg@10"] != pytest.approx(
        fused.retrieval[RANKER_ALL]["ndcg@10"]
    )
    # a cut to fewer than k scored the served policy on shorter lists than the baselines,
    # which the gate then compared without a word: refused
    with pytest.raises(ValueError, match=r"light_keep \(3\) must be at least k \(10\)"):
        E.evaluate(path, tt.path, rk.path, k=10, light=model, light_pool=60, light_keep=3,
                   bootstrap=0)  # fmt: skip
    md = report.to_markdown()
    assert "light ranker keeps 20 of the two-tower's 60" in md and "top 60 |" in md
    plain = E.evaluate(path, tt.path, rk.path, k=10, bootstrap=0)
    assert RANKER_ALL not in plain.retrieval and plain.light_keep == 0
    assert "light ranker keeps" not in plain.to_markdown()


def test_the_cascades_pool_can_take_the_other_sources(lake):  # noqa: F811
    """With ``pool_quotas`` the light ranker cuts the ANN's few candidates together with the
    week's trending items: more user-days then have an engaged item among the candidates."""
    path, tt, rk = lake
    model = L.fit_examples(path, tt.path, epochs=2)
    args = {"k": 10, "light": model, "light_pool": 3, "light_keep": 20, "bootstrap": 0}
    ann = E.evaluate(path, tt.path, rk.path, **args)
    wide = E.evaluate(path, tt.path, rk.path, pool_quotas={"trending": 60, "fresh": 0}, **args)
    assert wide.pool_sources == {"trending": 60, "fresh": 0} and not ann.pool_sources
    assert wide.reranking["dcn_v2"]["user_days"] > ann.reranking["dcn_v2"]["user_days"]
    assert "the pool also holds" in wide.to_markdown()
    assert "the pool also holds" not in ann.to_markdown()


def test_evaluate_can_fuse_the_item_similarity_into_the_cascade(lake):  # noqa: F811
    """``similarity_weight`` (an experiment's knob; serving's cascade does not use it) adds the
    item similarity's standardised score to the cut and to the fused order: 0 is the plain
    cascade, metric for metric; a weight changes what is served."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from recassets.training.similarity import ItemSimilarity

    path, tt, rk = lake
    rows = DeltaTable(path).to_pyarrow_table(columns=["user_id", "item_id", "label"])
    pos = rows.filter(pc.equal(rows["label"], 1))
    sim = ItemSimilarity.fit(pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), l2=1.0)
    model = L.fit_examples(path, tt.path, epochs=2)
    args = {"k": 10, "light": model, "light_pool": 60, "light_keep": 20, "bootstrap": 0}
    plain = E.evaluate(path, tt.path, rk.path, **args)
    zero = E.evaluate(path, tt.path, rk.path, similarity=sim, similarity_weight=0.0, **args)
    fused = E.evaluate(path, tt.path, rk.path, similarity=sim, similarity_weight=5.0, **args)

    def point(report):  # the point estimates (bootstrap 0 leaves the intervals NaN)
        return {m: v for m, v in report.retrieval[SERVED].items() if not m.endswith(("_lo", "_hi"))}

    assert point(zero) == point(plain)
    assert point(fused) != point(plain)
    assert point(fused)["user_days"] == point(plain)["user_days"] > 0
    # the similarity's best items join a narrow pool when its quota says so
    narrow = {**args, "light_pool": 3, "similarity": sim, "similarity_weight": 1.0}
    ann = E.evaluate(path, tt.path, rk.path, **narrow)
    wide = E.evaluate(path, tt.path, rk.path, pool_quotas={"similarity": 60, "trending": 0},
                      **narrow)  # fmt: skip
    assert wide.reranking["dcn_v2"]["user_days"] > ann.reranking["dcn_v2"]["user_days"]


def test_the_light_ranker_of_a_two_tower_is_found_in_a_home_copied_elsewhere(tmp_path):
    """A fit records its two-tower's path as written, in the home that wrote it. In a copy
    of that home (a backup restored, a laptop's home moved to a volume) the match on the raw
    path failed: the evaluation dropped the light ranker and re-promoted without it, with no
    new data (probe, 2026-12-06). Both paths are now read in the home at hand; another
    two-tower's fit is still not taken."""
    import shutil

    from tests.conftest import home_at

    a, b = home_at(tmp_path / "a"), home_at(tmp_path / "b")
    towers = tmp_path / "a" / "artifacts" / "models" / "two_tower"
    towers.mkdir(parents=True)
    for name in ("0001.pt", "0002.pt"):
        (towers / name).write_bytes(b"a checkpoint")
    tt, dense, y = world(400)
    model = L.LightRanker.fit(tt, dense, y, epochs=1, meta={"two_tower": str(towers / "0001.pt")})
    folder = tmp_path / "a" / "artifacts" / "models" / "light_ranker"
    folder.mkdir(parents=True)
    model.save(folder / "0001.npz", exclusive=True)
    assert L.latest_for(a, towers / "0001.pt") == str(folder / "0001.npz")
    assert L.latest_for(a, towers / "0002.pt") is None  # another two-tower's scores
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    mine = tmp_path / "b" / "artifacts" / "models"
    assert L.latest_for(b, mine / "two_tower" / "0001.pt") == str(
        mine / "light_ranker" / "0001.npz"
    )
    assert L.latest_for(b, mine / "two_tower" / "0002.pt") is None
    assert L.latest_for(b, None) is None
