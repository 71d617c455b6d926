from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recassets.paths import Paths
from recassets.training import evaluation as E
from recassets.training import policy as P
from recassets.training import recommend as R
from recassets.training import similarity as S
from recassets.training.loop import train_ranking, train_two_tower
from recassets.training.recommend import recommend
from support import planted

from .test_evaluation import N_CATEGORIES, TINY_RK, TINY_TT
from .torch_threads import one_torch_thread  # noqa: F401

K = "recall@50"
POP = {"popularity_all_time": {K: 0.10}, "popularity_trailing_7d": {K: 0.12}}


def report(
    candidate: float, current: float | None = None, tt: str = "tt.pt", rk: str = "rk.pt"
) -> E.EvaluationReport:
    retrieval = {"candidate": {K: candidate}, **POP}
    if current is not None:
        retrieval["current"] = {K: current}
    return E.EvaluationReport(
        k=50, train_days=["2026-01-01"], eval_days=["2026-01-02"], retrieval=retrieval,
        checkpoints={"candidate_two_tower": tt, "candidate_ranking": rk},
    )  # fmt: skip


# --- the gate -----------------------------------------------------------------------------------


def test_gate_passes_when_beating_both_baselines_and_current():
    d = P.gate({K: 0.2}, POP, {K: 0.21}, tolerance=0.02)
    assert d.passed and d.metric == K
    assert any("beats popularity_trailing_7d" in r for r in d.reasons)


def test_gate_fails_on_losing_to_either_popularity_baseline():
    d = P.gate({K: 0.11}, POP)
    assert not d.passed
    assert any("does not beat popularity_trailing_7d" in r for r in d.reasons)
    assert P.gate({K: 0.12}, POP).passed is False  # a tie is not a win


def test_gate_fails_when_worse_than_current_beyond_tolerance():
    d = P.gate({K: 0.2}, POP, {K: 0.23}, tolerance=0.02)
    assert not d.passed and any("worse than current" in r for r in d.reasons)
    assert P.gate({K: float("nan")}, POP).passed is False


def test_no_evaluation_users_is_one_reason_not_a_nan_comparison_per_baseline():
    """The demo printed "does not beat ...: recall@50 nan <= nan" once per baseline, and
    advice to hold out more days that could not help."""
    d = P.gate({K: float("nan"), "users": float("nan")}, POP, also=("ndcg@10",))
    assert not d.passed and d.reasons == [
        "no evaluation users: no user has new positives in the held-out days; nothing to decide"
    ]
    assert len(P.gate({K: 0.2, "users": 50.0}, POP).reasons) > 1  # a decision says its figures


N = "ndcg@10"
TWO = {"cooccurrence": {K: 0.372, N: 0.092}}


def diffs(recall: tuple[float, float, float], ndcg: tuple[float, float, float]) -> dict:
    return {"cooccurrence": {m: {"mean": d[0], "lo": d[1], "hi": d[2], "users": 515}
                             for m, d in ((K, recall), (N, ndcg))}}  # fmt: skip


def test_a_disagreement_between_the_metrics_is_settled_on_the_paired_differences():
    cand = {K: 0.371, N: 0.115}  # ahead on NDCG, 0.001 behind on Recall: the points disagree
    assert not P.gate(cand, TWO, also=(N,)).passed  # without intervals: refused, as before
    level = P.gate(
        cand, TWO, also=(N,), paired=diffs((-0.001, -0.012, 0.010), (0.023, 0.011, 0.035))
    )
    assert level.passed, level.reasons
    said = [r for r in level.reasons if "paired differences" in r]
    assert said and "ndcg@10 +0.0230 [+0.0110, +0.0350] (ahead)" in said[0], said
    assert not any(r.startswith("does not beat") for r in level.reasons)
    # a loss beyond its interval refuses, however large the gain on the other metric
    worse = P.gate(
        cand, TWO, also=(N,), paired=diffs((-0.001, -0.008, -0.0005), (0.023, 0.011, 0.035))
    )
    assert not worse.passed and any(
        "does not beat cooccurrence: recall@50" in r for r in worse.reasons
    )
    said = [r for r in worse.reasons if "not beaten on the paired differences" in r]
    assert said and "recall@50 -0.0010 [-0.0080, -0.0005] (behind)" in said[0], worse.reasons
    # and a gain the data cannot tell from noise does not settle it either
    noise = P.gate(
        cand, TWO, also=(N,), paired=diffs((-0.001, -0.012, 0.010), (0.023, -0.002, 0.048))
    )
    assert not noise.passed
    # intervals missing for one metric (no bootstrap): the point rule stands
    nan = diffs((-0.001, float("nan"), float("nan")), (0.023, 0.011, 0.035))
    assert not P.gate(cand, TWO, also=(N,), paired=nan).passed
    # a candidate behind on both points is refused even with a stray interval above zero
    behind = {K: 0.30, N: 0.080}
    assert not P.gate(
        behind, TWO, also=(N,), paired=diffs((-0.07, -0.09, -0.05), (-0.01, 0.001, 0.03))
    ).passed


def test_the_reports_paired_differences_reach_the_gate():
    r = E.EvaluationReport(
        k=50, train_days=["2026-01-01"], eval_days=["2026-01-02"], ndcg_at=10,
        retrieval={"candidate": {K: 0.371, N: 0.115, "users": 515}, **TWO},
        paired=diffs((-0.001, -0.012, 0.010), (0.023, 0.011, 0.035)),
    )  # fmt: skip
    assert P.gate_report(r).passed
    assert not P.gate_report(replace(r, paired={})).passed  # a report from before: points
    again = E.EvaluationReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.paired == r.paired and P.gate_report(again).passed


def test_a_catalog_within_the_top_k_is_decided_on_ndcg_alone():
    """With 40 items and K = 50 a model's Recall@50 is 1 whatever its order, popularity's
    0.41 (it lists only items with positives): that "gain", far beyond its interval, passed a
    model level on NDCG@10 through the paired rule."""
    r = E.EvaluationReport(
        k=50, train_days=["2026-01-01"], eval_days=["2026-01-02"], ndcg_at=10, catalog_size=40,
        retrieval={"candidate": {K: 1.0, N: 0.087, "users": 515}, **TWO},
        paired=diffs((0.628, 0.60, 0.65), (-0.005, -0.02, 0.01)),
    )  # fmt: skip
    refused = P.gate_report(r)
    assert not refused.passed and refused.metric == N
    assert refused.reasons[0].startswith("the catalog (40 items) fits in the top 50")
    assert P.gate_report(replace(r, catalog_size=400)).passed  # a real Recall@50 gain: passes
    ahead = replace(r, retrieval={"candidate": {K: 1.0, N: 0.2, "users": 515}, **TWO})
    assert P.gate_report(ahead).passed  # ahead on NDCG@10 itself


def test_a_gate_with_no_baseline_never_passes():
    d = P.gate({K: 0.9}, {})
    assert not d.passed and "no baseline to beat" in d.reasons
    assert P.gate({K: 0.9}, POP).passed  # the same candidate, something to beat


def test_the_gates_baselines_are_never_dropped_in_silence():
    """A misspelled or empty ``gate_baselines`` used to leave the gate nothing to beat (it
    passed a candidate worse than every baseline); a named baseline the report lacks too."""
    r = report(0.05)  # worse than both popularities
    assert set(r.baselines()) == set(POP)  # without gate_baselines: every one scored
    assert not P.gate_report(r).passed
    for names, says in [
        (["popularity_al_time"], "unknown 'popularity_al_time'"),
        ([], "an empty list"),
        (["cooccurrence"], "not scored in this report: cooccurrence"),
    ]:
        with pytest.raises(ValueError, match=says):
            replace(r, gate_baselines=names).baselines()
    assert list(replace(r, gate_baselines=["popularity_all_time"]).baselines()) == [
        "popularity_all_time"
    ]
    with pytest.raises(ValueError, match="no baseline scored"):
        replace(r, retrieval={"candidate": {K: 0.05}}).baselines()


# --- promotion ----------------------------------------------------------------------------------


def test_no_pointer_means_popularity(paths):
    assert P.current_policy(paths) == {"policy": "popularity", "variant": "trailing_7d"}


@pytest.mark.parametrize("text", ['{"policy": "mod', "[1, 2]"])
def test_a_damaged_pointer_is_named_with_what_to_do(paths, text):
    from recassets.training.checkpoint import DamagedArtifactError

    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    assert P.current_policy(paths)["variant"] == "all_time"  # the good pointer reads
    P.pointer_path(paths).write_text(text)  # before: a bare JSONDecodeError, no file named
    with pytest.raises(DamagedArtifactError, match=r"current\.json is damaged .*delete it"):
        P.current_policy(paths)


def test_promote_on_pass_writes_the_pointer(paths):
    d = P.promote(paths, report(0.3, tt="a/tt.pt", rk="a/rk.pt"))
    assert d.passed
    pol = P.current_policy(paths)
    assert (
        pol["policy"] == "model" and pol["two_tower"] == "a/tt.pt" and pol["ranking"] == "a/rk.pt"
    )
    assert pol["evaluation"]["retrieval"]["candidate"][K] == 0.3
    assert [p.name for p in P.pointer_path(paths).parent.iterdir() if p.name.startswith(".")] == []


def test_a_copied_home_reads_its_own_model_files(tmp_path: Path):
    """The pointer records absolute paths; a copy of the home (or a moved one) must serve its
    own copies, not the original home's, which here still exists and differs."""
    origin, copy = Paths.at(tmp_path / "a"), Paths.at(tmp_path / "b")
    files = {}
    for home in (origin, copy):
        for store, name in (("two_tower", "0001.pt"), ("ranking", "0002.pt"),
                            ("item_similarity", "0001.npz")):  # fmt: skip
            f = P.models_dir(home) / store / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(str(home.artifacts))
            files.setdefault(home.artifacts, {})[store] = str(f)
    mine = files[origin.artifacts]
    P.write_policy(origin, {"policy": "model", **mine, "light_ranker": "/elsewhere/x.npz",
                            "note": str(P.models_dir(origin) / "two_tower" / "0001.pt")})  # fmt: skip
    P.pointer_path(copy).write_text(P.pointer_path(origin).read_text())  # the copy's pointer
    assert P.current_policy(origin) == json.loads(P.pointer_path(origin).read_text())
    got = P.current_policy(copy)
    assert {k: got[k] for k in mine} == files[copy.artifacts]
    assert got["light_ranker"] == "/elsewhere/x.npz"  # not a models/<store>/<file> path
    assert got["note"] == mine["two_tower"]  # only the keys that name model files move
    # a file the copy lacks stays as recorded (whoever opens it names it)
    Path(files[copy.artifacts]["ranking"]).unlink()
    assert P.current_policy(copy)["ranking"] == mine["ranking"]


def test_losing_to_popularity_keeps_popularity_serving(paths):
    d = P.promote(paths, report(0.05))
    assert not d.passed
    # the popularity variant that scored best on the window serves
    assert P.current_policy(paths)["policy"] == "popularity"
    assert P.current_policy(paths)["variant"] == "trailing_7d"


def test_worse_than_current_keeps_the_previous_model(paths):
    P.promote(paths, report(0.3, tt="old/tt.pt", rk="old/rk.pt"))
    before = P.pointer_path(paths).read_text()
    d = P.promote(paths, report(0.2, current=0.3, tt="new/tt.pt", rk="new/rk.pt"))
    assert not d.passed
    assert P.pointer_path(paths).read_text() == before
    assert json.loads(before)["two_tower"] == "old/tt.pt"


def _refused(current: dict[str, float], users: int = 300) -> E.EvaluationReport:
    """A candidate below everything, beside a current model scored at ``current``."""
    n = {"users": users, "user_days": users}
    pop = {"popularity_all_time": {K: 0.10, "ndcg@10": 0.08, **n},
           "popularity_trailing_7d": {K: 0.12, "ndcg@10": 0.07, **n}}  # fmt: skip
    return E.EvaluationReport(
        k=50, train_days=["2026-01-01"], eval_days=["2026-01-02"],
        retrieval={"candidate": {K: 0.01, "ndcg@10": 0.01, **n}, **pop, "current": {**current, **n}},
        checkpoints={"candidate_two_tower": "new/tt.pt", "candidate_ranking": "new/rk.pt"},
    )  # fmt: skip


def test_a_current_model_that_popularity_now_beats_is_replaced_by_popularity(paths):
    P.promote(paths, report(0.3, tt="old/tt.pt", rk="old/rk.pt"))
    d = P.promote(paths, _refused({K: 0.11, "ndcg@10": 0.06}))
    assert not d.passed
    pointer = P.current_policy(paths)
    assert (pointer["policy"], pointer["variant"]) == ("popularity", "trailing_7d")
    assert pointer["replaced"]["two_tower"] == "old/tt.pt"
    assert "recall@50 0.1100 < 0.1200, ndcg@10 0.0600 < 0.0700" in pointer["replaced"]["reasons"][0]
    assert any("no longer beats popularity" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("current", "users"),
    [
        ({K: 0.11, "ndcg@10": 0.075}, 300),  # still ahead on NDCG@10: one metric is not enough
        ({K: 0.13, "ndcg@10": 0.06}, 300),  # still ahead on Recall@K
        ({K: 0.11, "ndcg@10": 0.06}, 9),  # behind on both, but on nine users: noise
    ],
)
def test_a_current_model_ahead_of_popularity_or_judged_on_few_users_keeps_serving(
    paths, current, users
):
    P.promote(paths, report(0.3, tt="old/tt.pt", rk="old/rk.pt"))
    before = P.pointer_path(paths).read_text()
    assert not P.promote(paths, _refused(current, users)).passed
    assert P.pointer_path(paths).read_text() == before


def test_checkpoint_versions_are_numbered(paths):
    assert P.latest_checkpoint(paths, "two_tower") is None
    assert P.next_checkpoint_path(paths, "two_tower").name == "0001.pt"
    (P.models_dir(paths) / "two_tower").mkdir(parents=True)
    for n in ("0001.pt", "0002.pt", "junk.pt"):
        (P.models_dir(paths) / "two_tower" / n).write_bytes(b"")
    assert P.latest_checkpoint(paths, "two_tower").name == "0002.pt"
    assert P.next_checkpoint_path(paths, "two_tower").name == "0003.pt"


def test_a_new_version_never_overwrites_one_another_training_created(paths, monkeypatch):
    """Two trainings that finish together: the second finds the number it computed taken (here
    the other's file appears between its count and its write) and takes the next one."""
    folder = P.models_dir(paths) / "two_tower"
    folder.mkdir(parents=True)
    (folder / "0001.pt").write_bytes(b"served model")
    counted = P.next_checkpoint_path
    raced = []

    def next_path_then_race(p, kind):
        out = counted(p, kind)
        if not raced:  # the other training saves this very number first
            out.write_bytes(b"the other training's model")
            raced.append(out.name)
        return out

    monkeypatch.setattr(P, "next_checkpoint_path", next_path_then_race)
    ckpt = planted_checkpoint()
    saved = P.save_new_version(paths, "two_tower", ckpt)
    assert raced == ["0002.pt"] and Path(saved).name == "0003.pt"
    assert (folder / "0001.pt").read_bytes() == b"served model"
    assert (folder / "0002.pt").read_bytes() == b"the other training's model"
    assert ckpt.path == saved


def planted_checkpoint():
    from recassets.training.checkpoint import Checkpoint

    return Checkpoint(
        kind="two_tower", config={}, state_dict={}, optimizer={}, vocab={}, source={}, runs=[],
        metrics={}, code_version="t", created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


# --- recommend ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(make_home):
    paths = make_home("reco")
    planted.write_days(paths.table("training_examples"), range(4), n_categories=N_CATEGORIES)
    return paths


def _seen(paths) -> dict[int, set[int]]:
    """Positives anywhere in the table plus the history of the user's latest row."""
    days = E.available_days(paths)
    rows = E.read_days(paths, days, ("user_id", "item_id", "label", "history_item_ids"))
    return E.add_history(E.engaged_items(rows), E.latest_rows(rows, "user_id"))


def test_popularity_policy_excludes_seen_and_cold_starts_unknown_users(home):
    seen = _seen(home)
    out = recommend(home, [3, 999_999], k=20)
    assert out.schema.names == ["user_id", "item_id", "rank", "score"]
    known = out.filter(E.pc.equal(out["user_id"], 3))
    assert known["rank"].to_pylist() == list(range(1, 21))
    assert not set(known["item_id"].to_pylist()) & seen[3]
    scores = known["score"].to_pylist()
    assert scores == sorted(scores, reverse=True)
    cold = out.filter(E.pc.equal(out["user_id"], 999_999))
    rows = E.read_days(home, E.trailing_days(planted.day(3)), ("user_id", "item_id", "label"))
    trend_ids, _ = E.popularity(rows)
    assert cold["item_id"].to_pylist() == trend_ids[:20].tolist()


def test_model_policy_retrieves_ranks_and_excludes_seen(home, tmp_path):
    days = E.available_days(home)
    table = home.table("training_examples")
    tt = train_two_tower(table, days, replace(TINY_TT, epochs=2), output=tmp_path / "tt.pt")
    rk = train_ranking(table, days, replace(TINY_RK, epochs=1), output=tmp_path / "rk.pt")
    P.write_policy(home, {"policy": "model", "two_tower": tt.path, "ranking": rk.path})
    try:
        seen = _seen(home)
        out = recommend(home, [5, 7, 123_456], k=10, candidates=30)
        for u in (5, 7):
            mine = out.filter(E.pc.equal(out["user_id"], u))
            assert mine.num_rows == 10 and mine["rank"].to_pylist() == list(range(1, 11))
            assert not set(mine["item_id"].to_pylist()) & seen[u]
            s = mine["score"].to_pylist()
            assert s == sorted(s, reverse=True)
        assert out.filter(E.pc.equal(out["user_id"], 123_456)).num_rows == 10  # cold start
    finally:
        P.pointer_path(home).unlink()


def test_blend_policy_batch_lists_are_whole_unseen_and_in_order(home, tmp_path):
    days = E.available_days(home)
    table = home.table("training_examples")
    tt = train_two_tower(table, days, replace(TINY_TT, epochs=1), output=tmp_path / "tt.pt")
    rows = E.read_days(home, days, ("user_id", "item_id", "label"))
    pos = rows.filter(E.pc.equal(rows["label"], 1))
    sim = S.ItemSimilarity.fit(pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), l2=10.0)
    sim_path = sim.save(tmp_path / "sim.npz")
    P.write_policy(home, {"policy": "model", "two_tower": tt.path, "order": "blend",
                          "item_similarity": sim_path})  # fmt: skip
    try:
        seen = _seen(home)
        out = recommend(home, [5, 7, 3, 123_456], k=12, candidates=30)
        assert out.schema == R.RESULT_SCHEMA
        assert out["user_id"].to_pylist() == [u for u in (5, 7, 3, 123_456) for _ in range(12)]
        for u in (5, 7, 3):
            mine = out.filter(E.pc.equal(out["user_id"], u))
            assert mine["rank"].to_pylist() == list(range(1, 13))
            assert not set(mine["item_id"].to_pylist()) & seen[u]
            assert len(set(mine["item_id"].to_pylist())) == 12
            s = mine["score"].to_pylist()
            assert s == sorted(s, reverse=True)
    finally:
        P.pointer_path(home).unlink()


def test_batch_lists_become_rows_in_user_and_rank_order():
    lists = {1: R._pack([7, 5], [0.9, 0.1]), 2: R._pack([], []), 3: R._pack([4], [2.5])}
    got = R._to_table([3, 2, 1, 9], lists)  # 9 has no list: no rows, as 2
    assert got.to_pylist() == [
        {"user_id": 3, "item_id": 4, "rank": 1, "score": 2.5},
        {"user_id": 1, "item_id": 7, "rank": 1, "score": 0.9},
        {"user_id": 1, "item_id": 5, "rank": 2, "score": 0.1},
    ]
    assert R._to_table([2, 9], lists).num_rows == 0 and got.schema == R.RESULT_SCHEMA
    view = np.arange(400)
    items, _ = R._pack(view[:3], [1.0, 1.0, 1.0])
    assert items.base is None  # a copy: a batch never keeps a union's whole array alive


def test_cli_recommend_writes_parquet(home, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from recassets.training.recommend import cli_recommend

    for var in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECASSETS_HOME", home.home)
    users = tmp_path / "users.txt"
    users.write_text("3\n999999\n")
    out = tmp_path / "reco.parquet"
    cli_recommend(str(users), 5, str(out))
    table = pq.read_table(out)
    assert table.num_rows == 10 and sorted(set(table["user_id"].to_pylist())) == [3, 999_999]


def test_seen_means_every_rating_not_only_the_positives(make_home):
    """A movie the user rated 2 (a ``rating`` row with label 0) is seen: never recommended
    again, by the popularity policy as by evaluation. Counting positives only let it back in."""
    paths = make_home("seen")
    table = paths.table("training_examples")
    planted.write_days(table, range(2), n_categories=N_CATEGORIES)
    rows = E.read_days(paths, E.available_days(paths), ("user_id", "item_id", "label"))
    top = int(E.popularity(rows)[0][0])
    user = next(u for u in range(48) if top not in E.engaged_items(rows).get(u, set()))
    low = planted.make_day(2, n_categories=N_CATEGORIES).slice(0, 1).to_pylist()[0]
    low.update(user_id=user, item_id=top, label=0, source="rating", history_item_ids=[])
    planted.write_day(table, pa.Table.from_pylist([low], schema=planted.SCHEMA))

    out = recommend(paths, [user], k=10)
    assert top not in out["item_id"].to_pylist()
    assert top in recommend(paths, [user], k=10, seen_sources=())["item_id"].to_pylist()
    all_rows = E.read_days(
        paths, E.available_days(paths), ("user_id", "item_id", "label", "source")
    )
    assert top in E.seen_items(all_rows)[user]
    assert top not in E.seen_items(all_rows, sources=()).get(user, set())


def test_days_without_positives_save_no_model_and_a_quiet_day_keeps_the_last(paths: Paths):
    """A history with no positive example (every rating below the threshold) trains nothing:
    refused naming the days, and no version written (one was saved with 0 examples and a NaN
    loss, and looked like a model). After a trained version, a day without positives is a
    quiet day: the version stays, no new one."""
    from .tiny import TINY

    table = paths.table("training_examples")
    planted.write_days(table, range(3), p_match=0.0, p_other=0.0)
    with pytest.raises(ValueError, match=r"two_tower: no positive in 2026-01-01\.\.") as err:
        P.train_next(paths, "two_tower", TINY)
    assert "held-out" not in str(err.value)  # none there either: nothing more to say
    assert P.checkpoint_versions(paths, "two_tower") == []
    # the ranker has rows (negatives) but no positive: it would learn "never engaged" (AUC NaN)
    days = E.available_days(paths)
    rows = E.read_days(paths, days[: len(days) - P.choose_holdout(paths, None).days], ("label",))
    with pytest.raises(ValueError, match=rf"ranking: no positive among the {rows.num_rows} training examples in"):  # fmt: skip
        P.train_next(paths, "ranking", replace(TINY, epochs=3))  # rows once, not once a pass
    assert P.checkpoint_versions(paths, "ranking") == []
    with pytest.raises(ValueError, match="item_similarity: no positive in 2026-01-01"):
        S.train_next(paths)
    assert S.versions(paths) == []

    # positives in the held-out days only: said, since the history has some
    later = Paths.at(Path(paths.home).parent / "h3")
    planted.write_days(later.table("training_examples"), range(3), p_match=0.0, p_other=0.0)
    planted.write_days(later.table("training_examples"), [3])
    with pytest.raises(ValueError, match=r"the held-out day\(s\) 2026-01-04 hold \d+ positive"):
        P.train_next(later, "two_tower", TINY, holdout_days=1)

    other = Paths.at(Path(paths.home).parent / "h2")
    planted.write_days(other.table("training_examples"), range(3))
    first = P.train_next(other, "two_tower", TINY, holdout_days=0)
    assert first.new_version
    ranker = P.train_next(other, "ranking", TINY, holdout_days=0)
    assert ranker.new_version  # with positives, the ranker trains (the failing case above)
    planted.write_days(other.table("training_examples"), [3], p_match=0.0, p_other=0.0)
    quiet = P.train_next(other, "two_tower", TINY, holdout_days=0)  # day 3: no positives
    assert not quiet.new_version and quiet.path == first.path
    assert P.checkpoint_versions(other, "two_tower") == [Path(first.path)]
    quiet = P.train_next(other, "ranking", TINY, holdout_days=0)  # negatives only: kept
    assert not quiet.new_version and quiet.path == ranker.path


def test_the_gate_does_not_decide_on_a_handful_of_users():
    few = P.gate({K: 0.9, "users": P.MIN_GATE_USERS - 1, "user_days": 3}, POP)
    assert not few.passed
    said = f"too few users to decide: {P.MIN_GATE_USERS - 1} < {P.MIN_GATE_USERS}"
    assert any(r.startswith(said) for r in few.reasons), few.reasons
    enough = P.gate({K: 0.9, "users": P.MIN_GATE_USERS, "user_days": 30}, POP)
    assert enough.passed and not any("too few" in r for r in enough.reasons)
    assert P.gate({K: 0.9, "users": 3}, POP, min_users=3).passed  # a setting, not a constant


def test_no_evaluation_users_leave_the_popularity_pointer_as_it_is(paths: Paths):
    nan = float("nan")
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    empty = report(nan)
    empty.retrieval = {"candidate": {K: nan}, "popularity_all_time": {K: nan},
                       "popularity_trailing_7d": {K: nan}}  # fmt: skip
    assert not P.promote(paths, empty).passed
    assert P.current_policy(paths) == {"policy": "popularity", "variant": "all_time"}
    # with figures, the better variant is chosen (the failing case of the above)
    assert not P.promote(paths, report(0.05)).passed
    assert P.current_policy(paths)["variant"] == "trailing_7d"


def test_short_popularity_lists_are_filled_to_k_and_said(paths: Paths, capsys, monkeypatch):
    """No positive at all (every rating below the threshold): the popularity and trending
    lists are empty, and the batch gave nothing, exit 0. They are filled from every item by
    its engagements (seen items still out), and the count is said."""
    from recassets.training.recommend import BACKFILLED, cli_recommend

    table = paths.table("training_examples")
    planted.write_days(table, range(2), p_match=0.0, p_other=0.0)
    rows = E.read_days(paths, E.available_days(paths), ("user_id", "item_id", "label", "source"))
    user = int(rows["user_id"][0].as_py())
    ids, counts = np.unique(rows["item_id"].to_numpy(), return_counts=True)
    top = int(ids[np.argmax(counts)])  # first in the fill order: unless the user rated it
    low = planted.make_day(1, p_match=0.0, p_other=0.0).slice(0, 1).to_pylist()[0]
    low.update(user_id=user, item_id=top, label=0, source="rating", history_item_ids=[])
    planted.write_day(table, pa.Table.from_pylist([low], schema=planted.SCHEMA))
    out = recommend(paths, [user, 999_999], k=7)
    got = {
        u: out.filter(E.pc.equal(out["user_id"], u))["item_id"].to_pylist() for u in (user, 999_999)
    }
    assert len(got[user]) == len(got[999_999]) == 7
    assert top not in got[user] and top in got[999_999]  # a seen item stays out
    assert out.schema.metadata[BACKFILLED.encode()] == b"2"
    for var in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    users = Path(paths.home) / "users.txt"
    users.write_text(f"{user}\n")
    cli_recommend(str(users), 5)
    err = capsys.readouterr().err
    assert "left 1 user(s) short of k = 5" in err and "still short" not in err
    cli_recommend(str(users), 100_000)  # more than the catalog: said, not "filled"
    assert "; 1 still short: the catalog has no more items" in capsys.readouterr().err
    # a user who rated every item gets no row at all: named, not counted as filled
    everything = [{**low, "user_id": 424_242, "item_id": int(i)} for i in ids]
    planted.write_day(table, pa.Table.from_pylist(everything, schema=planted.SCHEMA))
    users.write_text(f"{user}\n424242\n")
    got = cli_recommend(str(users), 5)
    err = capsys.readouterr().err
    assert 424_242 not in got["user_id"].to_pylist()
    assert (
        "; 1 still short" in err
        and "(1 with none at all, no row in the output: user(s) 424242)" in err
    )
    planted.write_days(paths.table("training_examples"), [2])  # positives: no filling needed
    full = recommend(paths, [999_999], k=7)
    assert full.num_rows == 7 and BACKFILLED.encode() not in (full.schema.metadata or {})
