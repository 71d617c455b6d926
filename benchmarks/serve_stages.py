"""CPU time per request of each stage of the serving funnel, in process, at N = 2,000 and
20,000 candidates, on a built bento's own bundle and the home's online store; and the
GFLOP/s the DCN-v2 ranker reaches against this core's float32 matmul peak, measured in the
same run.

    .venv/bin/python -m benchmarks.serve_stages                 # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.serve_stages --home /tmp/stages-home --quick
    .venv/bin/python -m benchmarks.serve_stages --sizes 2000 20000 --users 40

Needs a home whose Bento store holds a built recommender (``recassets demo``); exits 2 when
it has none. ``--bento`` picks a tag (default: the newest).

Stages, in funnel order (``stages``: a dict of stage name -> callable, each reading and
writing one request's state, ``Request``), each timed with one ``time.thread_time`` pair
(the CPU time of this thread: torch and FAISS are pinned to one thread, ``pin_threads(1)``,
as a serving worker is, so their work runs on it):

- ``ann``: the two-tower's user tower and the FAISS index for the top N (+ the user's seen
  items, then dropped), as ``Recommender._retrieve_and_rank`` asks;
- ``ease`` and ``union`` (only when the bundle serves the blend order): the item similarity's
  scores of the user's history over the catalog (``ItemSimilarity.scores_for``) and
  ``sources.union_blend`` of the ANN's N, the EASE top N, the week's top N, the day's
  new items and the cohort's trending items (their quotas: ``FunnelConfig.quotas``);
- ``dcn_v2``: the DCN-v2 ranker over the N candidates (``funnel.ranking.Ranking``, broadcast
  form on the prepared item half), the cohort CTRs and the sort by logit included. It runs
  whichever order the bundle serves (in the blend order it does not run per request; it is
  timed here because it is what a ranked page costs);
- ``rules``: ``Recommender._rules`` over the served order's candidates (the union in the blend
  order, the ranker's order otherwise), k = ``--k``;
- ``auction``: ``Ads.apply`` over that page with the bundle's campaigns (a fresh in-process
  counter state per request, untimed, so every request runs the same auction; no campaigns:
  the stage is a no-op and says so).

The cascade (``l1``): when the bundle carries a light ranker (or the home holds one fitted on
the bundle's two-tower: a blend bundle carries none), the same requests run again with
``l1`` inserted before ``dcn_v2`` (``insert_before``): the light ranker scores the ANN's N and
keeps the best 200, the DCN-v2 ranks those; printed beside the DCN-v2 over all N of the same
run (the baseline: the same ranker, the same requests, the same timer), with the light
stage's GFLOP/s.

The sequence-aware L2 (``seq_l2``): when the home holds a sequence-aware ranker
(``<artifacts>/models/sequence_ranking/``, whether or not the gate chose it), the same requests
run again with it in the DCN-v2's place (after the cut when there is a light ranker: the
cascade it would serve in), its item half prepared over the same (tiled) catalog and the
user's history encoded per request, as ``funnel.ranking.Ranking`` serves it; printed beside
the DCN-v2 of the same run over the same candidates (the baseline: same requests, same timer),
with its GFLOP/s counted from its layer shapes (the DCN-v2's served form plus the attention's
per-candidate work, ``TargetAttention.flops_per_candidate`` at the user's history length).

Catalog smaller than N: the bundle's catalog is tiled (``tile``) to max(N's, its size) rows,
every copy of an item under a new id (id + copy x offset): the item block's arrays, the
ranker's prepared item rows (``PreparedItems``) and the index's vectors (a new index of the
same factory and metric over them). The ranker then does the same work per candidate as on a
catalog of that size; the ANN scans the tiled index; EASE's own row gather stays on the
fitted catalog (the copies score 0, outside the fit), the gather over the tiled ids is
timed. The output says when it tiled.

Baselines, from the same run: each stage beside the request's total CPU time (its share);
the ranker's GFLOP/s, counted from its layer shapes (multiply-adds per candidate of the
served form, ``served_macs``), beside the peak of one large float32 matmul (``--peak-size``,
default 2048, square) on one thread timed the same way (``thread_time``); and for
information the interaction network alone (cross layers, MLP, head) on one request's x0
(``interaction_alone``): the ranker's matmul-shaped part, without its gathers and glue. Every
figure is a mean: the stages' over the requests, the matmul's over 3 runs, the interaction
network's over 5; a GFLOP/s is the requests' mean FLOPs (each request's own candidate count
and history) over their mean time. Before each request, untimed, the rankers' memos are
cleared (a served request arrives with a fresh row); in the blend order the auction clears
them again, since serving runs no DCN-v2 there to leave the user half for it. Wall
time (``perf_counter``) per stage is printed too: on a loaded machine it exceeds CPU time.
The exit status is 0 (2 when the home has no bento): benchmarks report, they do not gate.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks._common import (
    bento_parser,
    forget_ranking,
    known_users,
    machine_line,
    percentile,
    print_summary,
    require_bento,
    row,
)
from benchmarks.stages_support import light_for, peak_gflops, sequence_for, served_macs, tile

LIGHT_KEEP = 200  # what the light stage the seam is for will keep


@dataclass
class Request:
    """One request's state as the stages pass it along."""

    user: int
    values: dict[str, Any]
    seen: set[int]
    n: int
    ann: tuple[Any, Any] | None = None  # (ids, dot products) of the ANN, seen items dropped
    candidates: tuple[Any, Any] | None = None  # what the DCN ranks (a light stage may cut it)
    ranked: tuple[Any, Any, Any] | None = None  # (ids, scores, retrieval) in ranker order
    light: Any = None  # the light ranker's logits of the kept candidates, after its cut
    ease: Any = None
    union: tuple[Any, Any, Any] | None = None  # (ids, scores, sources) of union_blend
    page: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Setup:
    """What the stages read: the recommender and the (maybe tiled) catalog they run over."""

    rec: Any
    block: Any  # ItemBlock, tiled when the catalog is smaller than the largest N
    retrieval: Any  # stages.Retrieval over the (maybe tiled) index
    ads: Any  # recassets.funnel.ads.Ads
    k: int
    tiled: int  # copies of the catalog (1: not tiled)
    light: Any = None  # training.light.LightRanker (the cascade's cut), if the home has one
    keep: int = 200  # what the cut keeps (FunnelConfig.light_keep)
    light_rows: Any = None  # its prepared item rows over ``block`` (made at the first request)
    # the sequence-aware ranker, if the home holds one: its Ranking and its (tiled) block
    seq_ranking: Any = None
    seq_block: Any = None


Stage = Callable[[Setup, Request], None]


# --- the stages ------------------------------------------------------------------------------


def ann(s: Setup, r: Request) -> None:
    from recassets.funnel import rules as R

    size = s.retrieval.index.size
    ids, scores = s.retrieval(r.user, r.values, min(size, r.n + len(r.seen)))
    ids, scores = R.exclude_seen(ids, scores, r.seen)
    r.ann = r.candidates = (ids[: r.n], scores[: r.n])


def ease(s: Setup, r: Request) -> None:
    from recassets.funnel.users import seen_items

    r.ease = s.rec.similarity.scores_for(seen_items(r.values), s.block.ids)


def union(s: Setup, r: Request) -> None:
    from recassets.training.sources import cohort_trending, union_blend

    assert r.ann is not None
    ids, scores = r.ann
    taste = s.rec.catalog.cohort_engagements(  # memoized per cohort and day, as in serving
        s.block, r.values.get("country"), r.values.get("age_bucket")
    )
    cohort = cohort_trending(s.block.engagements_7d, taste, s.block.category_code)
    r.union = union_blend(
        s.block.ids, s.block.engagements_7d, r.ease, ids, scores, r.seen, r.n,
        fresh=s.block.fresh, quotas=s.rec.config.quotas(r.n), cohort=cohort,
    )  # fmt: skip


def dcn_v2(s: Setup, r: Request) -> None:
    assert r.candidates is not None
    ids, retrieval = r.candidates
    cohort = s.rec._cohort_of(s.block, r.values)
    logits, _ = s.rec._ranking(s.block, r.user, r.values, ids, cohort)
    r.ranked = ordered(s, r, ids, logits, retrieval)


def ordered(s: Setup, r: Request, ids: Any, logits: Any, retrieval: Any) -> tuple[Any, Any, Any]:
    """The L2's order, as serving makes it: after the light cut, both stages' scores fused
    (``light.fuse``), else the logits."""
    import numpy as np

    from recassets.training.light import fuse

    score = logits if r.light is None else fuse(logits, r.light, s.rec.config.light_weight)
    order = np.lexsort((ids, -score))
    return ids[order], score[order], retrieval[order]


def seq_l2(s: Setup, r: Request) -> None:
    """The sequence-aware ranker in the DCN-v2's place (``dcn_v2`` with its own block)."""

    assert r.candidates is not None and s.seq_ranking is not None
    ids, retrieval = r.candidates
    cohort = s.rec._cohort_of(s.block, r.values)
    logits, _ = s.seq_ranking(s.seq_block, r.user, r.values, ids, cohort)
    r.ranked = ordered(s, r, ids, logits, retrieval)


def l1(s: Setup, r: Request) -> None:
    """The light ranker's cut (``Recommender.light_cut`` over the possibly tiled block): the
    best ``keep`` of the candidates on their dot products and counters."""
    import numpy as np

    assert r.candidates is not None and s.light is not None
    ids, retrieval = r.candidates
    if s.light_rows is None:  # once per catalog, as serving does at a refresh (untimed: warmup)
        zero = np.zeros((1, s.block.dense.shape[1]), np.float32)
        s.light_rows = s.light.prepare(np.vstack([s.block.dense, zero]))
    pos, found = s.block.positions(ids)
    rows = s.light_rows[np.where(found, pos, len(s.block.ids))]
    kept, r.light = s.light.keep(ids, retrieval, None, s.keep, prepared=rows)
    r.candidates = (ids[kept], retrieval[kept])


def rules(s: Setup, r: Request) -> None:
    if r.union is not None:  # the blend order serves: the rules take the union
        ids, scores, sources = r.union
        r.page = s.rec._rules(
            s.block, ids, scores, None, s.k, ["retrieval", "blend"], r.notes, sources
        )
    else:
        assert r.ranked is not None
        ids, logits, retrieval = r.ranked
        r.page = s.rec._rules(
            s.block, ids, logits, retrieval, s.k, ["retrieval", "ranking"], r.notes
        )


def auction(s: Setup, r: Request) -> None:
    from recassets.funnel.recommender import Recommendation

    if r.union is not None:
        # the blend order serves no DCN-v2 per request: the auction's pCTR call computes the
        # ranker's user half itself. The ``dcn_v2`` stage timed above left it (and its logits)
        # in the ranking's memo; forget them, or the auction's cost would be understated.
        # (The ranker's order shares the user half in serving too: kept there.)
        forget_ranking(s.rec._ranking)
    rec = Recommendation(r.user, "model", r.page, s.block.day, r.notes, False, r.values)
    r.page = s.ads.apply(s.rec, rec, s.k).items


def stages_for(rec: Any) -> dict[str, Stage]:
    """The funnel's stages in order for this recommender's bundle."""
    out: dict[str, Stage] = {"ann": ann}
    if rec.similarity is not None:
        out |= {"ease": ease, "union": union}
    return out | {"dcn_v2": dcn_v2, "rules": rules, "auction": auction}


def insert_before(stages: dict[str, Stage], before: str, name: str, fn: Stage) -> dict[str, Stage]:
    """``stages`` with ``name`` -> ``fn`` inserted just before ``before`` (the seam for a new
    stage: a light ranker before ``dcn_v2``)."""
    out: dict[str, Stage] = {}
    for key, value in stages.items():
        if key == before:
            out[name] = fn
        out[key] = value
    return out


# --- the run ---------------------------------------------------------------------------------


def time_stages(
    setup: Setup, stages: dict[str, Stage], requests: list[Request], warmup: int = 3
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[int]]]:
    """(CPU ms, wall ms) per stage per request, plus ``total`` (the sum over the stages); and
    each timed request's own candidate counts: ``ann`` (the ANN's, before any cut) and
    ``ranked`` (what the L2 ranked), for the GFLOP/s of that request's own work."""
    import gc

    from recassets.funnel.ads import InProcessAdState

    cpu: dict[str, list[float]] = {n: [] for n in [*stages, "total"]}
    wall: dict[str, list[float]] = {n: [] for n in [*stages, "total"]}
    rows: dict[str, list[int]] = {"ann": [], "ranked": []}
    for j, proto in enumerate([*requests[:warmup], *requests]):
        r = dataclasses.replace(proto, notes=[])
        setup.ads.state = InProcessAdState()  # untimed: every request meets the same counters
        # untimed: every request starts with the rankers' memos empty, as a served request
        # (a fresh row object) does; a request repeating the one before (one user, or the
        # warm-up's last = the first timed) would otherwise be answered from them
        forget_ranking(setup.rec._ranking)
        forget_ranking(setup.seq_ranking)
        if j == warmup:
            gc.collect()
        tc = tw = 0.0
        for name, fn in stages.items():
            c0, w0 = time.thread_time(), time.perf_counter()
            fn(setup, r)
            c, w = (time.thread_time() - c0) * 1000, (time.perf_counter() - w0) * 1000
            tc, tw = tc + c, tw + w
            if j >= warmup:
                cpu[name].append(c)
                wall[name].append(w)
        if j >= warmup:
            cpu["total"].append(tc)
            wall["total"].append(tw)
            rows["ann"].append(len(r.ann[0]) if r.ann else 0)
            rows["ranked"].append(len(r.candidates[0]) if r.candidates else 0)
    return cpu, wall, rows


def rate(flops: list[float], ms: list[float]) -> float:
    """GFLOP/s of requests that each did ``flops[i]`` in ``ms[i]``: their mean work over their
    mean time (each request counted with its own candidates, not the first one's)."""
    return mean(flops) / (mean(ms) / 1000) / 1e9 if mean(ms) > 0 else float("nan")


def interaction_alone(setup: Setup, r: Request, repeats: int = 5) -> tuple[float, int]:
    """(mean CPU ms of ``repeats`` runs after one warm-up, rows) of the interaction network
    alone (cross layers, deep MLP, head: ``DCNv2._finish``) on one request's x0 and first
    low-rank product, captured from a ``dcn_v2`` call: the ranker's matmul-shaped part,
    without the user half, the gathers and the concatenation of x0."""
    import torch

    ranker = setup.rec.ranker
    captured: list[Any] = []
    finish = ranker._finish
    ranker._finish = lambda x0, low, k: (captured.append((x0, low, k)), finish(x0, low, k))[1]
    # ``r`` was just ranked (the probe): the same call again would be answered from the
    # ranking's memo and never reach ``_finish``
    forget_ranking(setup.rec._ranking)
    try:
        dcn_v2(setup, r)
    finally:
        del ranker._finish
    if not captured:
        raise SystemExit("the dcn_v2 stage did not reach DCNv2._finish: nothing to time")
    x0, low, kernels = captured[0]
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            t = time.thread_time()
            finish(x0, low, kernels)
            times.append((time.thread_time() - t) * 1000)
    # the mean, the statistic of the stages and of the matmul baseline alike
    return mean(times[1:]), int(x0.shape[0])


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch load, as serving
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    ap = bento_parser(__doc__)
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[2000, 20000],
        help="the N's (--candidates is not read)",
    )
    ap.add_argument("--users", type=int, default=40, help="requests per N (one per user)")
    ap.add_argument("--seed", type=int, default=0, help="which users")
    ap.add_argument("--peak-size", type=int, default=2048, help="the baseline matmul's side")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 users, 1024 matmul")
    a = ap.parse_args(argv)
    if a.quick:
        a.users, a.peak_size = 8, 1024

    paths, tag, bundle_dir = require_bento(a.home, a.bento)
    print(machine_line())
    from recassets.funnel.ads import Ads
    from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads
    from recassets.funnel.stages import Retrieval
    from recassets.funnel.users import seen_items

    pin_threads(1)
    rec = Recommender(Bundle.load(bundle_dir), paths, FunnelConfig())
    if not rec.model:
        print("the bundle serves the popularity policy: no retrieval or ranker to time")
        return
    ads = Ads.from_env(rec.bundle.path("campaigns"), {"RECASSETS_ADS_STATE": "process"})
    block = rec.catalog.block()
    assert block.prepared is not None, "no item features in memory: is the online store current?"
    assert rec.index is not None and rec.two_tower is not None and rec.tt_vocab is not None
    catalog = len(block.ids)
    biggest = max(a.sizes)
    tblock, tindex, copies = tile(block, rec.index, biggest)
    retrieval = Retrieval(rec.two_tower, rec.tt_vocab, tindex, rec._users)
    setup = Setup(rec, tblock, retrieval, ads, a.k, copies, light_for(rec, paths))
    setup.seq_ranking, setup.seq_block = sequence_for(rec, paths, biggest)
    stages = stages_for(rec)
    print(
        f"home {paths.home}, bento {tag}; order served: {rec.order}; catalog {catalog} items, "
        f"index {rec.index.info.factory} ({rec.index.size}); {len(ads.campaigns)} campaigns; "
        f"k = {a.k}; torch/FAISS 1 thread"
    )
    if copies > 1:
        print(
            f"the catalog ({catalog}) is smaller than N = {biggest}: item block, the ranker's "
            f"prepared rows and the index vectors TILED x{copies} to {len(tblock.ids)} rows "
            f"(new ids per copy; a new {tindex.info.factory} index over the tiled vectors); "
            f"EASE's gather stays on the {catalog} fitted items"
        )
    print(f"stages: {' -> '.join(stages)}")
    users = []
    for u in known_users(paths, a.users, a.seed):
        values = rec.user_row(u)
        if values is not None:
            users.append((u, values, seen_items(values)))
    if not users:
        raise SystemExit("no user of the sample has an online row: is the online store current?")

    macs = served_macs(rec.ranker)
    peak, peak_times = peak_gflops(a.peak_size)
    print(
        f"baseline: one {a.peak_size}^2 float32 matmul, 1 thread, thread_time: "
        f"{peak:.1f} GFLOP/s (mean of {len(peak_times)}, as the stages' means: "
        f"{', '.join(f'{t * 1000:.0f}' for t in peak_times)} ms)"
    )
    print(
        f"DCN-v2 multiply-adds per candidate: served form {macs['served']:,} "
        f"(whole interaction network on a full x0: {macs['interaction']:,})"
    )
    summary = []
    for n in a.sizes:
        n_eff = min(n, tindex.size)
        requests = [Request(u, v, s, n_eff) for u, v, s in users]
        cpu, wall, counts = time_stages(setup, stages, requests)
        probe = dataclasses.replace(requests[0])
        forget_ranking(rec._ranking)  # the probe runs as a fresh request
        for fn in stages.values():
            fn(setup, probe)
        ads_on = sum(bool(i.get("ad")) for i in probe.page)
        total = mean(cpu["total"])
        print(
            f"\nN = {n_eff} ({mean(counts['ranked']):.0f} ranked a request on average, after "
            f"dropping seen items), {len(requests)} requests"
            f"{' (tiled catalog)' if copies > 1 and n_eff > catalog else ''}; "
            f"CPU ms per request (thread_time), wall ms beside; a page had {ads_on} ad(s)"
        )
        print(
            f"    {'stage':10s} {'p50':>8s} {'p99':>8s} {'mean':>8s} {'share':>7s} {'wall mean':>10s}"
        )
        for name in [*stages, "total"]:
            c = cpu[name]
            print(
                f"    {name:10s} {percentile(c, 50):8.3f} {percentile(c, 99):8.3f} {mean(c):8.3f} "
                f"{100 * mean(c) / total:6.1f}% {mean(wall[name]):10.3f}"
            )
        rank_ms = mean(cpu["dcn_v2"])
        # each request's FLOPs from its own ranked count (seen items dropped differ by user)
        flops = [2.0 * macs["served"] * c for c in counts["ranked"]]
        gflops = rate(flops, cpu["dcn_v2"])
        print(
            f"    dcn_v2: {mean(flops) / 1e6:.1f} MFLOP a request (mean) -> {gflops:.1f} "
            f"GFLOP/s (mean work / mean time), {100 * gflops / peak:.0f} % of the matmul "
            f"baseline {peak:.1f} (mean too)"
        )
        alone_ms, rows = interaction_alone(setup, probe)
        # the first layer's low-rank product arrives computed: count it at its served size
        alone_macs = macs["served"] - macs["proj"] - macs["first_served"]
        alone = 2 * alone_macs * rows / (alone_ms / 1000) / 1e9
        print(
            f"    of which the interaction network alone on x0 ({rows} rows, mean of 5): "
            f"{alone_ms:.3f} ms, {alone:.1f} GFLOP/s, {100 * alone / peak:.0f} % of the peak"
        )
        for name in stages:
            summary.append(
                row(f"{name} CPU ms, N={n_eff} (share: stage/request)", mean(cpu[name]), total,
                    mean(cpu[name]) / total, "", None, "9.3f")
            )  # fmt: skip
        summary.append(
            row(f"dcn_v2 GFLOP/s, N={n_eff} (ours/1-thread matmul)", gflops, peak, gflops / peak,
                "", None, "9.1f")
        )  # fmt: skip
        summary.append(
            row(f"  interaction alone GFLOP/s, N={n_eff} (ours/matmul)", alone, peak, alone / peak,
                "", None,
                "9.1f")
        )  # fmt: skip
        if setup.light is not None:
            summary += time_cascade(setup, stages, requests, n_eff, rank_ms, peak)
        if setup.seq_ranking is not None:
            summary += time_sequence(setup, stages, requests, n_eff, macs, peak)
    print_summary(summary)


def time_sequence(
    setup: Setup, stages: dict[str, Stage], requests: list[Request], n: int,
    macs: dict[str, int], peak: float,
) -> list[Any]:  # fmt: skip
    """The same requests with the sequence-aware ranker in the DCN-v2's place (after the cut
    when there is a light ranker), against the DCN-v2 of the same run on the same
    candidates; summary rows."""
    base = stages if setup.light is None else insert_before(stages, "dcn_v2", "l1", l1)
    swapped = {("seq_l2" if k == "dcn_v2" else k): (seq_l2 if k == "dcn_v2" else v)
               for k, v in base.items()}  # fmt: skip
    cpu_dcn, _, _ = time_stages(setup, base, requests)
    cpu_seq, _, counts = time_stages(setup, swapped, requests)
    dcn_ms, seq_ms = mean(cpu_dcn["dcn_v2"]), mean(cpu_seq["seq_l2"])
    model = setup.seq_ranking.ranker
    # each request's work: its own ranked count and its own history length (the attention's
    # cost grows with it, up to the model's window)
    hists = [len(r.values.get("history_item_ids") or []) for r in requests]
    flops = [
        2.0 * (macs["served"] + model.sequence.flops_per_candidate(h)) * c
        for h, c in zip(hists, counts["ranked"], strict=True)
    ]
    gflops = rate(flops, cpu_seq["seq_l2"])
    where = f"after l1 keeps {setup.keep}" if setup.light is not None else "over all N"
    print(
        f"    the sequence-aware L2 ({where}, {mean(counts['ranked']):.0f} ranked a request; "
        f"mean history {mean([float(h) for h in hists]):.0f}): seq_l2 {seq_ms:.3f} ms "
        f"({mean(flops) / 1e6:.1f} MFLOP, {gflops:.1f} GFLOP/s) against dcn_v2 {dcn_ms:.3f} ms "
        f"on the same candidates (seq_l2/dcn_v2 {seq_ms / dcn_ms:.2f}x); request total "
        f"{mean(cpu_seq['total']):.3f} ms"
    )
    return [
        row(f"seq_l2 CPU ms, N={n}, {where} (seq_l2/dcn_v2)", seq_ms, dcn_ms, seq_ms / dcn_ms,
            "", None, "9.3f"),
        row(f"  seq_l2 GFLOP/s, N={n} (ours/1-thread matmul)", gflops, peak, gflops / peak, "",
            None, "9.1f"),
    ]  # fmt: skip


def time_cascade(
    setup: Setup, stages: dict[str, Stage], requests: list[Request], n: int, all_ms: float,
    peak: float,
) -> list[Any]:  # fmt: skip
    """The same requests through the cascade (``l1`` before ``dcn_v2``): the cut and the
    DCN-v2 over ``keep`` against the DCN-v2 over all N (``all_ms``, this run); summary rows."""
    cascade = insert_before(stages, "dcn_v2", "l1", l1)
    cpu, _, counts = time_stages(setup, cascade, requests)
    light_ms, rank_ms = mean(cpu["l1"]), mean(cpu["dcn_v2"])
    # the light stage scores each request's own ANN candidates (seen items dropped)
    flops = [float(setup.light.flops_per_candidate() * c) for c in counts["ann"]]
    gflops = rate(flops, cpu["l1"])
    both = light_ms + rank_ms
    print(
        f"    the cascade (l1 keeps {setup.keep}, then dcn_v2): l1 {light_ms:.3f} ms "
        f"({mean(flops) / 1e6:.2f} MFLOP, {gflops:.1f} GFLOP/s), dcn_v2 {rank_ms:.3f} ms; "
        f"together {both:.3f} ms against dcn_v2 over all {n}: {all_ms:.3f} ms (speedup "
        f"all/cascade {all_ms / both:.1f}x); request total {mean(cpu['total']):.3f} ms"
    )
    return [
        row(f"l1 + dcn_v2({setup.keep}) CPU ms, N={n} (speedup: all N/cascade)",
            both, all_ms, all_ms / both, "", None, "9.3f"),
        row(f"  l1 GFLOP/s, N={n} (ours/1-thread matmul)", gflops, peak, gflops / peak, "",
            None, "9.1f"),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
