"""Offline evaluation of a candidate model pair on a held-out window, beside simple baselines.

The window: every ``training_examples`` day after the last partition the candidate consumed
(``holdout_days`` of the training run; a fixed window of days, never trained on). The models
are frozen at the window's start, as the gate decides then; their inputs are what serving
reads on each day: for every eval day d and every user with a positive on d, the user's row
of d carries the features as of d-1 (history included), the items' rows the item counters as
of d-1. The unit is a user-day; confidence intervals resample users (a user's days together).

Per unit: exact search over ALL catalog items, minus the user's **seen** items (``seen_items``:
everything the user interacted with before d, whatever the rating, plus the history the user
carries into d); ground truth = the user's positives of d that are not already seen (a seen
item can never be recommended, so counting it would only lower every policy alike). Metrics,
averaged over user-days (binary relevance):

- ``recall@K``  = |top-K ∩ truth| / |truth|
- ``ndcg@K``    = sum over hits of 1/log2(rank+1), divided by the ideal DCG of
  min(|truth|, K) hits (Järvelin & Kekäläinen, 2002); ``ndcg@10`` beside it
- ``hit_rate@K`` = 1 when at least one truth item is in the top K
- ``<metric>_lo`` / ``_hi``: a 95 % percentile bootstrap interval (resampling users);
  ``users`` distinct users, ``user_days`` units.

Policies, on the same units, truth and exclusions in one call:

- ``candidate``: the two-tower alone (its top K);
- ``candidate_served``: what serving does, the two-tower's top ``candidates`` re-ranked by the
  DCN-v2 (when a ranker is given);
- ``current``: the promoted pair, served the same way (when given);
- baselines, each refreshed as of d-1 as a popularity policy would be: ``popularity_all_time``
  and ``popularity_trailing_7d`` (positive counts), and ``cooccurrence``: item-to-item cosine
  similarity of co-engagement (item-kNN, Sarwar et al. 2001), scored against the user's
  positives so far (a cheap and strong recommender on rating data); a user with no history gets
  all-time popularity from it.

Ranking: AUC and log loss of the ranker on all eval rows (``inference.evaluate_ranking``), and
``reranking``: AUC and NDCG@10 of ordering the two-tower's candidates by the ranker, by the
two-tower's own score, and by trailing popularity (truth = the user-day's positives among them).

The catalog and the user rows are read from ``training_examples`` with deltalake.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.funnel.config import FunnelConfig
from recassets.funnel.diversity import page
from recassets.funnel.items import FRESH_DAYS
from recassets.models.metrics import bootstrap_interval, retrieval_metrics
from recassets.paths import Paths
from recassets.training import data as D
from recassets.training import inference
from recassets.training import light as light_ranker
from recassets.training import units as U
from recassets.training.checkpoint import as_checkpoint
from recassets.training.cooccurrence import Cooccurrence
from recassets.training.eval_history import read_history
from recassets.training.examples import PathsOrTable, available_days, table_path
from recassets.training.heldout import (
    ITEM_COLUMNS,
    SEEN_SOURCES,
    TRAILING_DAYS,
    USER_COLUMNS,
    add_history,
    catalog,
    engaged_items,
    filled,
    items_as_of,
    latest_per_day,
    latest_rows,
    padded,
    popularity,
    popularity_ranking,
    read_days,
    seen_items,
    top_k_excluding,
    trailing_days,
    two_tower_ranking,
)
from recassets.training.report import (
    BASELINES,
    BLEND,
    CANDIDATE,
    CANDIDATES,
    COOCCURRENCE,
    COOCCURRENCE_SERVED,
    CURRENT,
    LIGHT,
    NDCG_AT,
    POPULARITY_ALL_TIME,
    POPULARITY_TRAILING_7D,
    RANKER_ALL,
    SEQUENCE_RANKER,
    SERVED,
    SERVED_DCN,
    SERVED_SEQUENCE,
    EvaluationReport,
    choose_order,
    choose_ranker,
    write_json_atomic,
)
from recassets.training.schema import ITEM_DENSE
from recassets.training.similarity import BETA, ItemSimilarity
from recassets.training.sources import (
    CatalogOrders,
    CohortRates,
    category_codes,
    cohort_rates,
    cohort_trending,
    cohort_vector,
    stage_recall,
)
from recassets.training.sources import union_blend as sources_union_blend
from recassets.training.units import Units, rerank_orders, summarize_units

BOOTSTRAP = 1000  # resamples of the bootstrap intervals


# --- item-to-item co-occurrence -----------------------------------------------------------------


# --- evaluate -----------------------------------------------------------------------------------


def default_eval_days(checkpoint: Any, paths: PathsOrTable | None = None) -> list[str]:
    """Every day of ``paths`` after the last partition the checkpoint consumed (the held-out
    window); without ``paths``, the day after it."""
    last = as_checkpoint(checkpoint).partitions[-1]
    if paths is not None:
        after = [d for d in available_days(paths) if d > last]
        if after:
            return after
    return [(D.as_day(last) + dt.timedelta(days=1)).isoformat()]


def evaluate(
    paths: PathsOrTable,
    checkpoint_two_tower: Any,
    checkpoint_ranking: Any | None = None,
    eval_days: Sequence[str] | None = None,
    k: int = 50,
    *,
    current_two_tower: Any | None = None,
    current_ranking: Any | None = None,
    device: Any = "cpu",
    candidates: int = CANDIDATES,
    ndcg_at: int = NDCG_AT,
    bootstrap: int = BOOTSTRAP,
    seen_sources: Sequence[str] = SEEN_SOURCES,
    seed: int = 0,
    similarity: Any | None = None,
    current_similarity: Any | None = None,
    light: Any | None = None,
    current_light: Any | None = None,
    light_pool: int = 500,
    light_keep: int = 200,
    rules: Mapping[str, Any] | None = None,
    sequence_ranking: Any | None = None,
    quotas: Mapping[str, int] | None = None,
    pool_quotas: Mapping[str, int] | None = None,
    light_weight: float = light_ranker.WEIGHT,
    similarity_weight: float = 0.0,
    cooccurrence: Any | None = None,
) -> EvaluationReport:
    """Evaluate the candidate pair (and the current one, when given) against the baselines.

    ``paths``: a ``Paths`` or the ``training_examples`` table path. ``eval_days``: default
    every day after the candidate two-tower's last consumed partition. ``candidates``: how many
    two-tower results the ranker re-ranks. ``bootstrap``: resamples of the intervals (0: none).
    ``similarity``: an ``ItemSimilarity`` (or its path) fitted on the training days: the blend
    order (``sources.union_blend``) is scored too, and serves when it beats the pair.
    ``light``: a ``LightRanker`` (or its path): the pair becomes the cascade serving runs (the
    two-tower's ``light_pool``, the light ranker keeps ``light_keep``, both stages' scores
    order them: ``light.fuse`` with ``light_weight``, 0 for the DCN-v2's order alone),
    scored beside the DCN-v2 over the whole pool (``RANKER_ALL``) and the light order alone.
    ``rules``: name -> ``FunnelConfig``: the blend's page under each config's list-wise rules
    (``diversity.page``: caps, MMR, freshness boost), scored as ``candidate_blend+<name>``.
    ``quotas``: each blend source's quota (``FunnelConfig.quotas``; default serving's default
    settings for ``candidates``: the fresh source included).
    ``pool_quotas``: with a light ranker, the cascade's pool also takes the other sources'
    items (``trending``, ``fresh``, ``cohort`` quotas; ``sources.union_blend``), which the light
    ranker cuts with the ANN's: a measurement (``benchmarks/cascade.py``); serving's pool
    is the ANN's alone, because on ML-1M the wider pool lost NDCG@10
    (docs/training-and-the-gate.md).
    ``sequence_ranking``: a sequence-aware ranker checkpoint: served the same way as the DCN-v2
    (same candidates, same light cut), scored beside it (``SERVED_DCN``, ``SERVED_SEQUENCE``);
    the better of the two becomes ``SERVED`` and the candidate ranker (``choose_ranker``:
    ``report.ranker`` and its reason).
    ``cooccurrence``: a co-occurrence file (``cooccurrence.train_next``, or its path) of the
    same days: co-occurrence as it would serve (the blend's union, its cosine order), scored as
    ``COOCCURRENCE_SERVED``, what serves when nothing learned passes and it beats popularity
    (``policy.promote``).
    """
    cand = as_checkpoint(checkpoint_two_tower)
    train_days = cand.partitions
    eval_days = D.normalize_partitions(eval_days or default_eval_days(cand, paths))
    present = set(available_days(paths))
    missing = [d for d in eval_days if d not in present]
    if missing:
        raise ValueError(f"eval days {missing} are not in {table_path(paths)}")
    overlap = sorted(set(eval_days) & set(train_days))
    if overlap:
        raise ValueError(f"eval days {overlap} were trained on")
    # the history of each day is every day before the first: a day between two eval days
    # was in neither (popularity "as of d-1" left it out)
    if gaps := sorted(
        d for d in present if eval_days[0] < d < eval_days[-1] and d not in eval_days
    ):
        raise ValueError(f"eval days {eval_days[0]}..{eval_days[-1]} leave out {gaps[:3]}: "
                         "evaluate on consecutive days")  # fmt: skip
    if min(candidates, light_keep) < k:  # the served lists were cut short, the baselines not
        raise ValueError(f"candidates ({candidates}) and light_keep ({light_keep}) must be at "
                         f"least k ({k}): the served policy would be scored on shorter lists")  # fmt: skip
    for ranker in (checkpoint_ranking, sequence_ranking):  # the rankers' days too
        seen_days = set(as_checkpoint(ranker).partitions) if ranker is not None else set()
        if seen_days & set(eval_days):
            raise ValueError(
                f"eval days {sorted(seen_days & set(eval_days))} were trained on by the ranker "
                f"{_path_of(ranker)}"
            )

    before = [d for d in sorted(present) if d < eval_days[0]]
    history_days = sorted({*before, *train_days})
    eval_rows = read_days(paths, eval_days, (*USER_COLUMNS, "item_id", "label", "ts", "source"))
    # the history read one day at a time, kept only as far as needed (eval_history: reading it
    # whole grew 50 MB a day of history at 175k examples a day)
    past = read_history(paths, history_days, eval_days, eval_rows["user_id"], seen_sources)
    item_rows = past.items

    # what the window's users have seen / engaged with up to the window, grown day by day below
    seen, engaged = past.seen, past.engaged
    pos_users = [past.positives]
    units = Units()
    user_tables: list[pa.Table] = []
    unit_day: list[int] = []
    for di, day in enumerate(eval_days):
        rows = eval_rows.filter(pc.equal(eval_rows["dt"], pa.scalar(D.as_day(day), pa.date32())))
        if rows.num_rows == 0:
            continue
        first = latest_rows(rows, "user_id", earliest=True)  # features as of d-1
        hist = {int(u): set(int(i) for i in (h or ()))
                for u, h in zip(first["user_id"].to_pylist(), first["history_item_ids"].to_pylist(),
                                strict=True)}  # fmt: skip
        today = engaged_items(rows)
        keep = []
        for r, u in enumerate(first["user_id"].to_pylist()):
            s = seen.get(u, set()) | hist.get(u, set())
            t = today.get(u, set()) - s
            if t:
                keep.append(r)
                units.users.append(u)
                units.days.append(day)
                units.truth.append(t)
                units.seen.append(s)
                units.history.append(engaged.get(u, set()) | hist.get(u, set()))
                unit_day.append(di)
        user_tables.append(first.take(pa.array(keep, pa.int64())))
        for u, items in seen_items(rows, seen_sources).items():
            seen.setdefault(u, set()).update(items)
        for u, items in today.items():
            engaged.setdefault(u, set()).update(items)
        pos_users.append(
            rows.filter(pc.equal(rows["label"], 1)).select(["user_id", "item_id", "label", "dt"])
        )

    users = pa.concat_tables(user_tables, promote_options="default") if user_tables else None
    n_units = len(units.users)
    catalog_ids = np.unique(item_rows["item_id"].to_numpy())

    lr = _light(light)
    quotas = dict(quotas) if quotas is not None else FunnelConfig(candidates=candidates).quotas()
    quotas.setdefault("cohort", 0)

    def cohort_rates_as_of(day: str) -> CohortRates:
        """The cohorts' week's engagements per category as of the day before ``day`` (what
        serving reads from the online store then); none without the lake (``paths`` a table
        path): the cohort source is then off."""
        if not isinstance(paths, Paths):
            return {}
        return cohort_rates(paths.table("cohort_features"), D.as_day(day) - dt.timedelta(days=1))

    # the models, one eval day at a time (item counters as of d-1)
    def model_rankings(tt: Any, rk: Any | None, sim: Any | None = None, lr: Any = None,
                       rk2: Any | None = None, pages: bool = True) -> tuple[
        list[list[int]], list[list[int]] | None, dict[str, list[Any]]
    ]:  # fmt: skip
        alone: list[list[int]] = [[] for _ in range(n_units)]
        served: list[list[int]] | None = [[] for _ in range(n_units)] if rk is not None else None
        extra: dict[str, list[Any]] = {"cands": [[] for _ in range(n_units)],
                                       "tt": [None] * n_units, "rk": [None] * n_units,
                                       "blend": [[] for _ in range(n_units)],
                                       "stages": [None] * n_units,
                                       "light": [[] for _ in range(n_units)],
                                       "ranker_all": [[] for _ in range(n_units)],
                                       "seq": [[] for _ in range(n_units)],
                                       "rk_seq": [None] * n_units,
                                       **{f"rules:{n}": [[] for _ in range(n_units)]
                                          for n in rules or {}}}  # fmt: skip
        if users is None or n_units == 0:
            return alone, served, extra
        ranker = inference.load_ranking(rk, device=device) if rk is not None else None
        second = inference.load_ranking(rk2, device=device) if rk2 is not None else None
        offset = 0
        for di, day in enumerate(eval_days):
            idx = [r for r in range(n_units) if unit_day[r] == di]
            if not idx:
                continue
            items = items_as_of(item_rows, day)
            ids, vecs = inference.item_embeddings(tt, items, device=device)
            urows = users.slice(offset, len(idx))
            offset += len(idx)
            _, uvecs = inference.user_embeddings(tt, urows, device=device)
            scores = uvecs @ vecs.T
            position = {int(i): p for p, i in enumerate(ids)}
            e7 = (items["i_engagements_7d"].to_numpy()
                  if sim is not None or pool_quotas is not None else None)  # fmt: skip
            dense = np.stack([items[c].to_numpy(zero_copy_only=False) for c in ITEM_DENSE], 1)
            category, creator, age = (items[c].to_numpy(zero_copy_only=False)
                                      for c in ("category", "creator", "i_age_days"))  # fmt: skip
            fresh = np.nan_to_num(age.astype(np.float64), nan=np.inf) <= FRESH_DAYS
            wants_cohort = (sim is not None and quotas["cohort"] > 0) or (
                pool_quotas is not None and pool_quotas.get("cohort", 0) > 0
            )
            rates = cohort_rates_as_of(day) if wants_cohort else {}
            names, codes = category_codes(category.tolist())
            # the blend's popularity counter: the days its fit chose (``popularity_days``);
            # the cascade's pool keeps the week's
            pop = items[sim.popularity_column].to_numpy() if sim is not None else e7
            cohort_of = {}  # (country, age bucket, blend or pool) -> its cohort scores, once a day
            orders = CatalogOrders.of(ids, pop, fresh) if pop is not None else None
            pool_orders = CatalogOrders.of(ids, e7, fresh) if e7 is not None else None
            for j, r in enumerate(idx):
                n_top = max(k, candidates, light_pool if lr is not None else 0)
                top = top_k_excluding(scores[j], ids, units.seen[r], n_top)
                alone[r] = top[:k]
                key = (urows["country"][j].as_py(), urows["age_bucket"][j].as_py())
                for use, counter in (("blend", pop), ("pool", e7)):
                    if rates and counter is not None and (*key, use) not in cohort_of:
                        cohort_of[(*key, use)] = cohort_trending(
                            counter, cohort_vector(rates, *key, names), codes
                        )
                if sim is not None and pop is not None:
                    tt_ids = np.asarray(top[:candidates], dtype=np.int64)
                    tt_s = np.asarray([scores[j][position[i]] for i in tt_ids.tolist()])
                    ranked, blended, srcs = sources_union_blend(
                        ids, pop, sim.scores_for(units.seen[r], ids), tt_ids, tt_s,
                        units.seen[r], candidates, fresh=fresh, quotas=quotas,
                        cohort=cohort_of.get((*key, "blend")), beta=sim.beta, gamma=sim.gamma,
                        orders=orders,
                    )  # fmt: skip
                    extra["blend"][r] = [int(i) for i in ranked[:k]]
                    extra["stages"][r] = (ranked, srcs.member)
                    for name, cfg in (rules or {}).items() if pages else ():
                        at = np.asarray([position[i] for i in ranked.tolist()], np.int64)
                        got = page(ranked, blended, None, category[at], k, cfg, stages=[],
                                   notes=[], creator=creator[at], age_days=age[at])  # fmt: skip
                        extra[f"rules:{name}"][r] = [e["item_id"] for e in got]
                if ranker is None or served is None:
                    continue
                cand_ids = top[: light_pool if lr is not None else candidates]
                if lr is not None and pool_quotas is not None and e7 is not None:
                    # the cascade's pool: the ANN's light_pool and the other sources' items
                    # (trending, fresh, cohort), which the light ranker then cuts
                    # (and the item similarity's best, when its quota says so)
                    ease = np.zeros(len(ids))
                    if sim is not None and pool_quotas.get("similarity", 0) > 0:
                        ease = sim.scores_for(units.seen[r], ids)
                    pool, _, _ = sources_union_blend(
                        ids, e7, ease,
                        np.asarray(cand_ids, np.int64),
                        np.asarray([scores[j][position[i]] for i in cand_ids]),
                        units.seen[r], light_pool,
                        fresh=fresh, quotas={"similarity": 0, **pool_quotas},
                        cohort=cohort_of.get((*key, "pool")),
                        beta=sim.beta if sim is not None else BETA, orders=pool_orders,
                    )  # fmt: skip
                    cand_ids = [int(i) for i in pool]
                if not cand_ids:
                    continue
                at = [position[i] for i in cand_ids]
                cand_rows = items.take(pa.array(at))
                rk_scores = inference.score_candidates(ranker[0], ranker[1], urows.slice(j, 1),
                                                       cand_rows)  # fmt: skip
                order = np.lexsort((np.asarray(cand_ids), -rk_scores))
                served[r] = [int(cand_ids[o]) for o in order[:k]]
                extra["cands"][r] = cand_ids
                extra["tt"][r] = np.asarray([scores[j][p] for p in at])
                seq_scores = None
                if second is not None:  # the sequence-aware L2, on the same candidates
                    seq_scores = inference.score_candidates(second[0], second[1],
                                                            urows.slice(j, 1), cand_rows)  # fmt: skip
                    extra["rk_seq"][r] = seq_scores
                    order = np.lexsort((np.asarray(cand_ids), -seq_scores))
                    extra["seq"][r] = [int(cand_ids[o]) for o in order[:k]]
                if lr is not None:  # the cascade serves; the DCN-v2 over all is its yardstick
                    cut = lr.score(extra["tt"][r], dense[at])
                    extra["ranker_all"][r] = served[r]
                    extra["light"][r] = [int(cand_ids[o]) for o in np.lexsort((cand_ids, -cut))[:k]]
                    sim_s = (sim.scores_for(units.seen[r], np.asarray(cand_ids, np.int64))
                             if sim is not None and similarity_weight else None)  # fmt: skip
                    served[r] = light_ranker.cascade(cand_ids, cut, rk_scores, light_keep,
                                                     light_weight, sim_s, similarity_weight)[:k]  # fmt: skip
                    if seq_scores is not None:
                        extra["seq"][r] = light_ranker.cascade(cand_ids, cut, seq_scores,
                                                               light_keep, light_weight, sim_s,
                                                               similarity_weight)[:k]  # fmt: skip
                extra["rk"][r] = rk_scores
        return alone, served, extra

    def summarize(ranked: Sequence[Sequence[int]]) -> dict[str, float]:
        return summarize_units(ranked, units, k, ndcg_at, bootstrap, seed)

    retrieval: dict[str, dict[str, float]] = {}
    sim = _similarity(similarity)
    if sim is not None and set(sim.meta.get("partitions", [])) & set(eval_days):
        raise ValueError(f"eval days were in the item similarity's fit ({sim.path})")
    seq_rk = sequence_ranking if checkpoint_ranking is not None else None
    alone, served, extra = model_rankings(cand, checkpoint_ranking, sim, lr, seq_rk)
    retrieval[CANDIDATE] = summarize(alone)
    ranker, ranker_reason, served_ranking = None, "", checkpoint_ranking
    difference: dict[str, float] = {}
    if served is not None:
        retrieval[SERVED] = summarize(served)
        if lr is not None:
            retrieval[RANKER_ALL] = summarize(extra["ranker_all"])
            retrieval[LIGHT] = summarize(extra["light"])
        if seq_rk is not None:  # two L2 rankers: the better serves
            retrieval[SERVED_DCN] = retrieval[SERVED]
            retrieval[SERVED_SEQUENCE] = summarize(extra["seq"])
            difference = U.paired_difference(extra["seq"], served, units, ndcg_at, bootstrap, seed)
            ranker, ranker_reason = choose_ranker(
                retrieval, f"ndcg@{ndcg_at}", f"recall@{k}", difference
            )
            if ranker == "sequence":
                retrieval[SERVED] = retrieval[SERVED_SEQUENCE]
                served_ranking = seq_rk
    stages = stage_recall(units.truth, extra["stages"], k) if sim is not None else {}
    if sim is not None:
        retrieval[BLEND] = summarize(extra["blend"])
        for name in rules or {}:
            retrieval[f"{BLEND}+{name}"] = summarize(extra[f"rules:{name}"])
    co_sim, got = _similarity(cooccurrence), None
    if co_sim is not None:
        if set(co_sim.meta.get("partitions", [])) & set(eval_days):
            raise ValueError(f"eval days were in the co-occurrence fit ({co_sim.path})")
        got = model_rankings(cand, None, co_sim, pages=False)[2]["blend"]  # no rules' pages
        retrieval[COOCCURRENCE_SERVED] = summarize(got)
    if current_two_tower is not None:
        cur_sim = _similarity(current_similarity)
        cur_lr = _light(current_light)
        cur_alone, cur_served, cur = model_rankings(
            current_two_tower, current_ranking, cur_sim, cur_lr
        )
        cur_ranked = cur["blend"] if cur_sim is not None else cur_served
        retrieval[CURRENT] = summarize(cur_ranked if cur_ranked is not None else cur_alone)
    order, why = choose_order(retrieval, f"ndcg@{ndcg_at}", f"recall@{k}")

    # baselines as of d-1, per eval day
    all_pos = pa.concat_tables([t.select(["user_id", "item_id", "label", "dt"]) for t in pos_users])
    pop_all: list[list[int]] = [[] for _ in range(n_units)]
    pop_recent: list[list[int]] = [[] for _ in range(n_units)]
    cooc: list[list[int]] = [[] for _ in range(n_units)]
    trailing_order: dict[int, dict[int, float]] = {}
    for di, day in enumerate(eval_days):
        idx = [r for r in range(n_units) if unit_day[r] == di]
        if not idx:
            continue
        d = D.as_day(day)
        upto = all_pos.filter(pc.less(all_pos["dt"], pa.scalar(d, pa.date32())))
        recent = upto.filter(
            pc.greater_equal(
                upto["dt"], pa.scalar(d - dt.timedelta(days=TRAILING_DAYS), pa.date32())
            )
        )
        all_ids = filled(popularity(upto)[0], catalog_ids)  # every list as long as the model's
        recent_ids, recent_counts = popularity(recent)
        trailing_order[di] = dict(zip(recent_ids.tolist(), recent_counts.tolist(), strict=True))
        recent_ids = filled(recent_ids, all_ids)
        model = Cooccurrence(upto["user_id"].to_numpy(), upto["item_id"].to_numpy())
        cs = model.scores([units.history[r] for r in idx])
        for j, r in enumerate(idx):
            excl = units.seen[r]
            pop_all[r] = popularity_ranking(all_ids, [0], {0: excl}, k)[0]
            pop_recent[r] = popularity_ranking(recent_ids, [0], {0: excl}, k)[0]
            cooc[r] = padded(top_k_excluding(cs[j], model.items, excl, k), all_ids, excl, k)
    retrieval[POPULARITY_ALL_TIME] = summarize(pop_all)
    retrieval[POPULARITY_TRAILING_7D] = summarize(pop_recent)
    retrieval[COOCCURRENCE] = summarize(cooc)
    # the order that would serve against each baseline, unit by unit (the gate's paired rule)
    pair = extra["seq"] if ranker == "sequence" else served  # the L2 that would serve
    would = {"blend": extra.get("blend"), "dcn_v2": pair, "two_tower": alone}.get(order)
    bases = {POPULARITY_ALL_TIME: pop_all, POPULARITY_TRAILING_7D: pop_recent, COOCCURRENCE: cooc}
    paired = {n: U.paired_gains(would, b, units, k, ndcg_at, bootstrap, seed)
              for n, b in bases.items()} if would is not None else {}  # fmt: skip
    pops = list(bases.items())[:2]  # co-occurrence as served against popularity, the same way
    fallback = {n: U.paired_gains(got, b, units, k, ndcg_at, bootstrap, seed)
                for n, b in pops} if got is not None else {}  # fmt: skip

    ranking: dict[str, dict[str, float]] = {}
    table = table_path(paths)
    if checkpoint_ranking is not None:
        ranking[CANDIDATE] = inference.evaluate_ranking(
            checkpoint_ranking, table, eval_days, device=device
        )
    if seq_rk is not None:
        ranking[SEQUENCE_RANKER] = inference.evaluate_ranking(
            seq_rk, table, eval_days, device=device
        )
    if current_ranking is not None:
        ranking[CURRENT] = inference.evaluate_ranking(
            current_ranking, table, eval_days, device=device
        )

    reranking: dict[str, dict[str, float]] = {}
    if served is not None:
        reranking = rerank_orders(units, unit_day, extra, trailing_order, ndcg_at, bootstrap, seed)

    def _path(c: Any) -> str | None:
        return (
            None
            if c is None
            else (as_checkpoint(c).path if not isinstance(c, str | os.PathLike) else os.fspath(c))
        )

    return EvaluationReport(
        k=k,
        train_days=list(train_days),
        eval_days=list(eval_days),
        retrieval=retrieval,
        ranking=ranking,
        catalog_size=len(catalog_ids),
        checkpoints={
            "candidate_two_tower": _path(checkpoint_two_tower),
            "candidate_ranking": _path(served_ranking),  # the L2 that would serve
            "candidate_ranking_dcn_v2": _path(checkpoint_ranking),
            "candidate_ranking_sequence": _path(seq_rk),
            "current_two_tower": _path(current_two_tower),
            "current_ranking": _path(current_ranking),
            "candidate_similarity": None if sim is None else sim.path,
            "candidate_light": None if lr is None else lr.path,
            "candidate_cooccurrence": None if co_sim is None else co_sim.path,
        },
        reranking=reranking,
        ndcg_at=ndcg_at,
        candidates=candidates,
        order=order,
        order_reason=why,
        stages=stages,
        light_pool=light_pool if lr is not None and served is not None else 0,
        light_keep=light_keep if lr is not None and served is not None else 0,
        light_weight=light_weight if lr is not None and served is not None else 0.0,
        pool_sources=dict(pool_quotas) if pool_quotas and lr is not None else {},
        ranker=ranker,
        ranker_reason=ranker_reason,
        ranker_difference=difference,
        paired=paired,
        paired_fallback=fallback,
    )


def _path_of(c: Any) -> str:
    return os.fspath(c) if isinstance(c, str | os.PathLike) else str(as_checkpoint(c).path)


def _similarity(s: Any | None) -> ItemSimilarity | None:
    return ItemSimilarity.load(s) if isinstance(s, str | os.PathLike) else s


def _light(m: Any | None) -> light_ranker.LightRanker | None:
    return light_ranker.LightRanker.load(m) if isinstance(m, str | os.PathLike) else m


__all__ = [
    "BASELINES", "CANDIDATE", "COOCCURRENCE", "COOCCURRENCE_SERVED", "CURRENT", "Cooccurrence",
    "EvaluationReport", "ITEM_COLUMNS", "POPULARITY_ALL_TIME", "POPULARITY_TRAILING_7D",
    "SEEN_SOURCES", "SERVED", "TRAILING_DAYS", "USER_COLUMNS", "add_history", "available_days",
    "bootstrap_interval", "catalog", "default_eval_days", "engaged_items", "evaluate",
    "items_as_of", "latest_per_day", "latest_rows", "popularity", "popularity_ranking",
    "read_days", "retrieval_metrics", "seen_items", "top_k_excluding", "trailing_days",
    "two_tower_ranking", "write_json_atomic"
]  # fmt: skip
