"""Batch recommendations: the pages ``/recommend`` serves, or the lake's order before any bento.

When the home's Bento store holds a built bento, each user's list is the page the bento that
``recassets serve`` serves would answer (``training.served``: serving's own
``Recommender.recommend`` over its bundle and the online store): the same cases (a user the
online store holds gets the served policy's list, history or none; one it does not hold, the
cold start), rules, backfill and scores, for the same bento, store and feature day.

Without a bento (nothing serves yet), the lake's order through the current policy
(``recassets.training.policy``). Model policy: two-tower retrieval (exact dot-product search over the catalog embeddings, top
``candidates`` = 500) then the order the gate chose: the ranker scores the candidates (the light
ranker's best 200 of them when the policy carries one, as serving cuts) in
serving's broadcast form (``inference.score_candidates``: one user row against N item rows),
or the blend (``sources.union_blend``) over them, the user's EASE neighbours and the
week's most engaged items. Popularity policy: the
pointer's popularity variant. Either way the user's seen items are excluded: every item the
user interacted with (``evaluation.seen_items``: positives, and every rating whatever its value,
by ``seen_sources``) plus the history the user carries (``history_item_ids``); users without a row in ``training_examples`` (cold
start) get the trailing-7-day popularity list (trending), minus nothing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.funnel.config import FunnelConfig
from recassets.funnel.items import FRESH_DAYS
from recassets.paths import Paths
from recassets.training import data as D
from recassets.training import evaluation as E
from recassets.training import inference, light, served
from recassets.training import policy as P
from recassets.training.schema import ITEM_DENSE
from recassets.training.similarity import ItemSimilarity
from recassets.training.sources import (
    CatalogOrders,
    CohortRates,
    category_codes,
    cohort_rates,
    cohort_trending,
    cohort_vector,
    union_blend,
)

RESULT_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), False),
        pa.field("item_id", pa.int64(), False),
        pa.field("rank", pa.int32(), False),
        pa.field("score", pa.float64(), False),
    ]
)


def recommend(
    paths: Paths,
    user_ids: Iterable[int],
    k: int = 100,
    *,
    candidates: int = 500,
    device: Any = "cpu",
    seen_sources: Sequence[str] = E.SEEN_SOURCES,
    bento: bool = True,
) -> pa.Table:
    """Top ``k`` items per user: ``(user_id, item_id, rank 1..k, score)``, users in input order.

    With a built bento in the home (``bento``, the default): the pages it serves
    (``served.recommend_served``, serving's settings from the environment: ``candidates``,
    ``device`` and ``seen_sources`` are the lake path's), scored as served; the metadata
    ``SERVED`` names the bento, ``BACKFILLED`` counts the pages backfilled from trending.
    Else the lake's order: ``score`` the ranker's logit (model policy) or the item's positive
    count (popularity and cold start); a list the policy leaves short of ``k`` is filled
    (``_backfill``: every item by engagements, scored by its positive count), ``BACKFILLED``
    counting the users filled.
    """
    users = [int(u) for u in dict.fromkeys(user_ids)]
    found = served.served_bundle(paths) if bento else None
    if found is not None:
        tag, folder = found
        pages, filled, policy = served.recommend_served(paths, folder, users, k)
        meta = {SERVED: tag, SERVED_POLICY: policy} | ({BACKFILLED: str(filled)} if filled else {})
        return _to_table(users, pages).replace_schema_metadata(meta)
    days = E.available_days(paths)
    if not days:
        raise ValueError("training_examples is empty: nothing to recommend from")
    rows = E.read_days(paths, days, ("user_id", "item_id", "label", "source"))
    seen = E.seen_items(rows, seen_sources)
    known = set(int(u) for u in np.unique(rows["user_id"].to_numpy()))
    all_ids, all_counts = E.popularity(rows)
    recent = rows.filter(
        pc.is_in(
            rows["dt"], pa.array([D.as_day(d) for d in E.trailing_days(days[-1])], pa.date32())
        )
    )
    trend_ids, trend_counts = E.popularity(recent)
    policy = P.current_policy(paths)

    out: dict[int, Ranked] = {}
    cold = [u for u in users if u not in known]
    trending = _pack(trend_ids[:k], trend_counts[:k])  # one list, shared by every cold user
    for u in cold:
        out[u] = trending
    warm = [u for u in users if u in known]
    user_rows = E.latest_rows(
        E.read_days(paths, days, (*E.USER_COLUMNS, "ts")).filter(
            pc.is_in(pc.field("user_id"), pa.array(warm, pa.int64()))
        ),
        "user_id",
    )
    E.add_history(seen, user_rows)  # engaged before the table's window counts as seen too
    if policy.get("policy") == P.MODEL and warm:
        out.update(_model_recommend(paths, policy, user_rows, days, seen, k, candidates, device))
    elif warm:
        ids, counts = (
            (all_ids, all_counts)
            if policy.get("variant") == "all_time"
            else (trend_ids, trend_counts)
        )
        score = dict(zip(ids.tolist(), counts.tolist(), strict=True))
        for u, top in E.popularity_ranking(ids, warm, seen, k).items():
            out[u] = _pack(top, [score[i] for i in top])
    short = _backfill(out, users, rows, seen, k)
    table = _to_table(users, out)
    return table.replace_schema_metadata({BACKFILLED: str(short)}) if short else table


# the result's schema metadata: how many users' lists the policy left short of k (backfilled)
BACKFILLED = "recassets.backfilled"
# the bento whose pages the result holds, and the policy its bundle serves (absent: the lake's)
SERVED, SERVED_POLICY = "recassets.served_bento", "recassets.served_policy"

# one user's list: item ids (int64) and scores (float64), best first. Arrays, not lists of
# (item, score) tuples: a batch over every user holds all the lists until the table is made;
# at k = 100 the peak (the lists and the columns, Arrow's pool aside) is 4.8 KB a user against 15.7 KB with tuples and
# column lists (benchmarks/recommend_memory.py: 0.31x), and the table is made 18x faster
Ranked = tuple[np.ndarray, np.ndarray]


def _pack(items: Any, scores: Any) -> Ranked:
    """A user's list as two arrays of their own (a copy: never a view that keeps a larger
    array alive)."""
    return np.array(items, dtype=np.int64), np.array(scores, dtype=np.float64)


def _backfill(
    out: dict[int, Ranked],
    users: Sequence[int],
    rows: pa.Table,
    seen: dict[int, set[int]],
    k: int,
) -> int:
    """Fill each list the policy left short of ``k`` from every item of the table by its
    engagements (rows of any label, as serving's counters count them; ties: the lower id),
    seen items still excluded, each with its positive count as score; the number of users
    filled. Serving backfills the same way (from trending). Before, a sparse last week or a
    history without positives gave short or empty lists, with exit 0 and no word."""
    ids, counts = np.unique(rows["item_id"].to_numpy().astype(np.int64), return_counts=True)
    order = ids[np.lexsort((ids, -counts))].tolist()
    positives = dict(zip(*(a.tolist() for a in E.popularity(rows)), strict=True))
    short = 0
    for u in users:
        items, scores = out.get(u, _pack([], []))
        if len(items) >= k:
            continue
        short += 1
        got, got_scores = items.tolist(), scores.tolist()
        taken = set(got) | seen.get(u, set())
        for i in order:
            if len(got) >= k:
                break
            if i not in taken:
                got.append(i)
                got_scores.append(float(positives.get(i, 0)))
        out[u] = _pack(got, got_scores)
    return short


def _model_recommend(
    paths: Paths,
    policy: dict[str, Any],
    user_rows: pa.Table,
    days: Sequence[str],
    seen: dict[int, set[int]],
    k: int,
    candidates: int,
    device: Any,
) -> dict[int, Ranked]:
    items = E.catalog(paths, days)
    if policy.get("order") == "blend":
        rates = cohort_rates(paths.table("cohort_features"))
        return _blend_recommend(policy, user_rows, items, seen, k, candidates, device, rates)
    retrieved = E.two_tower_ranking(
        policy["two_tower"], user_rows, items, seen, candidates, device=device
    )
    ranker, voc = inference.load_ranking(policy["ranking"], device=device)
    item_ids = items["item_id"].to_numpy()
    position = {int(i): r for r, i in enumerate(item_ids)}
    user_ids = user_rows["user_id"].to_numpy()
    cut = light.LightRanker.load(policy["light_ranker"]) if policy.get("light_ranker") else None
    uvecs = vecs = dense = np.zeros((0, 0), np.float32)
    if cut is not None:  # the cascade: the light ranker's best keep, as serving cuts
        _, uvecs = inference.user_embeddings(policy["two_tower"], user_rows, device=device)
        _, vecs = inference.item_embeddings(policy["two_tower"], items, device=device)
        dense = np.stack([items[c].to_numpy(zero_copy_only=False) for c in ITEM_DENSE], axis=1)
    out: dict[int, Ranked] = {}
    for r, u in enumerate(user_ids):
        cand = retrieved.get(int(u), [])
        light_scores = None
        if cut is not None and cand:
            at = np.asarray([position[i] for i in cand], dtype=np.int64)
            kept, light_scores = cut.keep(
                np.asarray(cand), vecs[at] @ uvecs[r], dense[at], light.KEEP
            )
            cand = [cand[j] for j in kept]
        if not cand:
            out[int(u)] = _pack([], [])
            continue
        cand_rows = items.take(pa.array([position[i] for i in cand]))
        scores = inference.score_candidates(ranker, voc, user_rows.slice(r, 1), cand_rows)
        if light_scores is not None:  # the cascade orders by both stages, as serving does
            scores = light.fuse(scores, light_scores, FunnelConfig().light_weight)
        order = np.lexsort((np.asarray(cand), -scores))[:k]
        out[int(u)] = _pack(np.asarray(cand, dtype=np.int64)[order], np.asarray(scores)[order])
    return out


def _blend_recommend(
    policy: dict[str, Any],
    user_rows: pa.Table,
    items: pa.Table,
    seen: dict[int, set[int]],
    k: int,
    candidates: int,
    device: Any,
    rates: CohortRates | None = None,
) -> dict[int, Ranked]:
    """The blend order (``sources.union_blend``), as serving runs it: the two-tower's top
    ``candidates`` (exact search), the user's EASE neighbours, the week's most engaged items,
    the day's new items and what trends in the user's cohort (the latest ``cohort_features``
    partition), each up to serving's default quota."""
    rates = rates or {}

    sim = ItemSimilarity.load(policy["item_similarity"])
    ids, vecs = inference.item_embeddings(policy["two_tower"], items, device=device)
    user_ids, uvecs = inference.user_embeddings(policy["two_tower"], user_rows, device=device)
    pop = items[sim.popularity_column].to_numpy()  # the counter of the days the fit chose
    position = {int(i): r for r, i in enumerate(items["item_id"].to_numpy())}
    pop = pop[[position[int(i)] for i in ids]]  # aligned with the embeddings' ids
    age = items["i_age_days"].to_numpy(zero_copy_only=False).astype(np.float64)
    fresh = np.nan_to_num(age[[position[int(i)] for i in ids]], nan=np.inf) <= FRESH_DAYS
    quotas = FunnelConfig(candidates=candidates).quotas()
    category = items["category"].to_pylist()
    names, codes = category_codes([category[position[int(i)]] for i in ids])
    cohort_of: dict[tuple[Any, Any], np.ndarray | None] = {}
    out: dict[int, Ranked] = {}
    at = {int(i): j for j, i in enumerate(ids)}  # catalog position of each id, built once
    orders = CatalogOrders.of(ids, pop, fresh)  # the standing sources' orders, once
    for r, u in enumerate(user_ids):
        excl = seen.get(int(u), set())  # everything interacted with: EASE's input too
        scores = vecs @ uvecs[r]
        top = np.asarray(E.top_k_excluding(scores, ids, excl, candidates), dtype=np.int64)
        tt = scores[[at[int(i)] for i in top]] if len(top) else np.zeros(0)
        key = (user_rows["country"][r].as_py(), user_rows["age_bucket"][r].as_py())
        if rates and key not in cohort_of:
            cohort_of[key] = cohort_trending(pop, cohort_vector(rates, *key, names), codes)
        got, s, _ = union_blend(ids, pop, sim.scores_for(excl, ids), top, tt, excl, candidates,
                                fresh=fresh, quotas=quotas, beta=sim.beta, gamma=sim.gamma,
                                cohort=cohort_of.get(key), orders=orders)  # fmt: skip
        out[int(u)] = _pack(got[:k], s[:k])
    return out


def _to_table(users: Sequence[int], out: dict[int, Ranked]) -> pa.Table:
    empty = _pack([], [])
    lists = [out.get(u, empty) for u in users]
    sizes = np.asarray([len(items) for items, _ in lists], dtype=np.int64)
    if not sizes.sum():
        return RESULT_SCHEMA.empty_table()
    ranks = np.arange(1, int(sizes.max()) + 1, dtype=np.int32)
    cols = {
        "user_id": np.repeat(np.asarray(users, dtype=np.int64), sizes),
        "item_id": np.concatenate([items for items, _ in lists]),
        "rank": np.concatenate([ranks[:n] for n in sizes]),
        "score": np.concatenate([scores for _, scores in lists]),
    }
    return pa.table(cols, schema=RESULT_SCHEMA)


# --- CLI hooks (wired in recassets/cli.py) -------------------------------------------------------


def cli_recommend(users_file: str, k: int = 100, out: str | None = None) -> pa.Table:
    """Recommend for the user ids in ``users_file`` (one per line); write a Parquet or CSV file
    (by ``out``'s suffix) or print JSON lines when ``out`` is None."""
    from recassets import atomic
    from recassets.cli_args import out_file
    from recassets.paths import Paths

    if out is not None:  # checked before the work, not after it
        if not out.endswith((".parquet", ".csv")):
            raise SystemExit(f"recassets recommend --out {out}: name a .parquet or .csv file")
        out_file("recommend", out)
    ids = _user_ids(Path(users_file))
    table = recommend(Paths.from_env(), ids, k)
    meta = table.schema.metadata or {}
    short = int(meta.get(BACKFILLED.encode(), b"0"))
    tag = meta.get(SERVED.encode(), b"").decode()
    print(f"recassets recommend: the pages bento {tag} serves (policy "
          f"{meta.get(SERVED_POLICY.encode(), b'').decode()}), as /recommend answers them"
          if tag else "recassets recommend: no bento built in this home: the lake's order "
          "through the current policy", file=sys.stderr)  # fmt: skip
    if short:
        counts = pc.value_counts(table["user_id"])
        listed = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))  # fmt: skip
        still = sum(1 for u in dict.fromkeys(ids) if listed.get(u, 0) < k)
        none = [u for u in dict.fromkeys(ids) if u not in listed]  # every item seen: no row
        print(f"recassets recommend: the policy left {short} user(s) short of k = {k}: filled "
              + ("from trending, as /recommend backfills" if tag else
                 "from all items by engagements (seen items excluded)")
              + (f"; {still} still short: the catalog has no more items they have not seen"
                 if still else "")
              + (f" ({len(none)} with none at all, no row in the output: user(s) "
                 f"{', '.join(map(str, none[:10]))}{', ...' if len(none) > 10 else ''})"
                 if none else ""), file=sys.stderr)  # fmt: skip
    if out is None:
        for row in table.to_pylist():
            print(json.dumps(row))
    elif out.endswith(".csv"):
        import pyarrow.csv as pacsv

        # written beside, then renamed over: a full disk leaves no half file, and an earlier
        # good file stays as it was
        with atomic.atomic_path(out) as tmp:
            pacsv.write_csv(table, tmp)
    else:
        import pyarrow.parquet as pq

        with atomic.atomic_path(out) as tmp:
            pq.write_table(table, tmp)
    return table


USER_ID = re.compile(r"[0-9]{1,19}")


def _user_ids(path: Path) -> list[int]:
    """The user ids of ``path``, one per line (blank lines skipped); a line that is not an
    id within int64, or a file that cannot be read, is a ``SystemExit`` naming file and line."""
    import stat

    try:  # a device (/dev/zero) or a pipe would be read without end, or wait for a writer
        regular = stat.S_ISREG(path.stat().st_mode)
        text = path.read_text(encoding="utf-8-sig") if regular else ""
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"recassets recommend --users {path}: cannot read it ({e})") from None
    if not regular:
        raise SystemExit(
            f"recassets recommend --users {path}: not a regular file (a folder, device or pipe)"
        )
    ids = []
    # lines end in \n (a \r before it dropped): str.splitlines also splits on form feeds,
    # U+2028 and more, which miscounted the line named and read "1<FF>2" as two ids
    for number, line in enumerate(text.split("\n"), start=1):
        token = line.strip(" \t\r")
        if not token:
            continue
        # ASCII digits only, as /recommend takes (0 to int64): int() also reads "1_000",
        # "+5" and Arabic-Indic digits, and a negative id is none
        value = int(token) if USER_ID.fullmatch(token) else None
        if value is None or value >= 2**63:
            raise SystemExit(
                f"{path}:{number}: {token[:40]!r} is not a user id (an integer from 0 to 2^63-1)"
            )
        ids.append(value)
    if not ids:
        raise SystemExit(f"recassets recommend --users {path}: no user id in it")
    return ids


def cli_evaluate(k: int = 50) -> E.EvaluationReport:
    """Evaluate the latest checkpoints (against the current model, if any) on the day after
    their last consumed partition; print the markdown table. Does not promote."""
    from recassets.paths import Paths
    from recassets.training import cooccurrence
    from recassets.training.similarity import versions

    paths = Paths.from_env()
    tt, rk = P.latest_checkpoint(paths, "two_tower"), P.latest_checkpoint(paths, "ranking")
    if tt is None:
        days = E.available_days(paths)
        why = (
            "no training_examples yet"
            if not days
            else f"training_examples holds {len(days)} day(s); none trained a two-tower (it "
            "needs 2 days or more, one held out, and positives in them: the materialize "
            "log's failed steps say which)"
        )
        raise SystemExit(
            f"recassets evaluate: no two-tower checkpoint under {P.models_dir(paths)}: {why}; "
            f"what serves now: {P.current_policy(paths).get('policy')}"
        )
    cur = P.current_policy(paths)
    sims = versions(paths)
    report = E.evaluate(
        paths,
        str(tt),
        str(rk) if rk else None,
        k=k,
        current_two_tower=cur.get("two_tower") if cur.get("policy") == P.MODEL else None,
        current_ranking=cur.get("ranking") if cur.get("policy") == P.MODEL else None,
        similarity=str(sims[-1]) if sims else None,
        current_similarity=cur.get("item_similarity") if cur.get("policy") == P.MODEL else None,
        light=light.latest_for(paths, tt) if rk else None,
        current_light=cur.get("light_ranker") if cur.get("policy") == P.MODEL else None,
        cooccurrence=cooccurrence.fit_of(paths, str(sims[-1]) if sims else None),
    )
    print(report.to_markdown())
    users = report.retrieval.get(E.CANDIDATE, {}).get("users")
    if not users or users != users:  # 0 or NaN: every figure above is empty
        print(f"no evaluation users in {', '.join(report.eval_days)}: nothing to decide "
              "(no user has new positives there); the current policy keeps serving")  # fmt: skip
        return report
    print(f"order that would serve: {report.order} ({report.order_reason})")
    decision = P.gate_report(report)
    print(f"the promotion gate would {'promote' if decision.passed else 'refuse'} it:")
    for reason in decision.reasons:
        print(f"  - {reason}")
    learned = cur.get("policy") == P.MODEL and cur.get("fallback") != P.COOCCURRENCE_POLICY
    co = P.cooccurrence_serves(report) if not decision.passed else None
    # a refusal that takes the served model down says so, as promote would do it
    gone = P.replaced_by(report, learned, co is not None, dry=True) if not decision.passed else None
    if gone:
        print(f"  - {gone}")
    if co is not None:
        if not learned or gone:
            print(f"  - co-occurrence would serve (nothing learned does): {co}")
        else:
            print("  - the current model keeps serving: popularity has not overtaken it")
    return report


__all__ = ["cli_evaluate", "cli_recommend", "recommend"]
