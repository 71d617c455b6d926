"""A page and its ads per request, in process: the auction's pCTR from a ranker call of its own
(the baseline) against the page's own ranker call (``Recommender.prescore``: the campaigns'
items scored with the page's candidates, the auction's ``rank`` answered from that call).

    .venv/bin/python -m benchmarks.serve_ads --home HOME [--bento TAG] [--requests 2000]

Both sides run the same recommender (one bundle, one online store), the same users in the same
order, the same funnel and the same auction, on one thread (``pin_threads(1)``, as a serving
worker is), each request timed by one ``perf_counter`` pair (``timed_blocks``: the requests
dealt into ``--rounds`` blocks, the sides in rotating order, so drift in the machine's load is
shared). The only differences: whether ``prescore`` is set, and what the ranker may reuse
(nothing; the user half; the page's logits too), each side's memo cleared before its auction.
Each request starts from a fresh in-process ad state, so every request runs the same auction
on both sides (making it, a few microseconds, is inside the timed call on both sides alike).

Needs a home whose bento serves a ranked order (the DCN-v2 or the cascade) with campaigns;
a blend bundle runs no ranker per page, and without campaigns there is no auction: both exit 2
saying so. Every side must place ads (``Ads.apply`` serves the organic page when the auction
fails, so a broken auction would otherwise be timed as a fast one): a side that placed none,
or placed another number than the others, fails the run naming the counts.
"""

from __future__ import annotations

import dataclasses
import sys

from benchmarks._common import (
    bento_parser,
    known_users,
    latency_line,
    machine_line,
    print_summary,
    require_bento,
    row,
    timed_blocks,
)


def main(argv: list[str] | None = None) -> None:
    ap = bento_parser((__doc__ or "").split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per side")
    ap.add_argument("--users", type=int, default=200, help="distinct users, seeded")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(machine_line())
    from recassets.funnel.ads import Ads, InProcessAdState
    from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads

    pin_threads(1)
    paths, tag, bundle_dir = require_bento(args.home, args.bento)
    rec = Recommender(Bundle.load(bundle_dir), paths, FunnelConfig(candidates=args.candidates))
    ads = Ads.from_env(rec.bundle.path("campaigns"), {"RECASSETS_ADS_STATE": "process"})
    if not rec.model or rec.order == "blend":
        sys.exit(f"{tag} serves {rec.order or 'popularity'}: no ranker call per page to share")
    if not ads.campaigns:
        sys.exit(f"{tag} carries no campaigns: no auction to price")
    users = known_users(paths, args.users, args.seed)
    calls = [users[j % len(users)] for j in range(args.requests)]
    campaigns = [c.item_id for c in ads.campaigns]

    placed = {name: 0 for name in ("nothing shared", "two calls", "one call")}

    def request(user: int, share: str = "one call") -> None:
        page = rec.recommend(user, args.k, True)
        fresh = dataclasses.replace(ads, state=InProcessAdState())
        ranking = rec._ranking
        assert ranking is not None
        if share != "one call":  # the page's logits never answer the auction's pCTR, even
            ranking._last_scores = None  # when every campaign happened to be on the page
        if share == "nothing shared":  # and the auction's call computes the user half again
            ranking._last_user = None
        served = fresh.apply(rec, page, args.k, True)
        placed[share] += sum(1 for i in served.items if i.get("ad"))

    for user in users:  # warm: the catalog block, the prepared items, the vocabulary rows
        request(user)
    if not placed["one call"]:
        sys.exit(f"{tag}: no ad placed on {len(users)} warm-up pages: the auction fails or no "
                 f"campaign can run (see the log above); nothing to time")  # fmt: skip
    placed["one call"] = 0
    times = timed_blocks(
        {"nothing shared": lambda u: request(u, "nothing shared"),
         "two calls": lambda u: request(u, "two calls"), "one call": request},
        calls,
        rounds=args.rounds,
        setup={"nothing shared": lambda: rec.prescore([]), "two calls": lambda: rec.prescore([]),
               "one call": lambda: rec.prescore(campaigns)},
    )  # fmt: skip
    if min(placed.values()) == 0 or len(set(placed.values())) > 1:
        sys.exit(f"ads placed per side differ or are none (the same auctions must run on every "
                 f"side): {placed}")  # fmt: skip
    print(f"bento {tag}, {len(campaigns)} campaigns, N = {args.candidates}, k = {args.k}, "
          f"{len(users)} users, {args.requests} requests a side, {placed['one call']} ads "
          f"placed a side")  # fmt: skip
    for name, samples in times.items():
        print(latency_line(name, samples, width=15))
    mean = {name: sum(v) / len(v) for name, v in times.items()}
    base = mean["nothing shared"]
    print_summary(
        [row(f"page + ads, {label} (base: none shared), ms", mean[name], base,
             mean[name] / base, "-", None, "9.3f")
         for name, label in (("two calls", "user half shared"), ("one call", "+ one ranker call"))]
    )  # fmt: skip


if __name__ == "__main__":
    main()
