"""What ``benchmarks.serve_stages`` runs over, apart from the stages themselves: the catalog
tiled to N rows, the DCN-v2's multiply-adds per candidate from its layer shapes, the one-thread
matmul baseline, and the home's light and sequence-aware rankers when it holds them.

Kept apart so that ``serve_stages`` stays one readable module (and under the hook's 600 lines).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

# --- tiling a catalog smaller than N ---------------------------------------------------------


def tile(block: Any, index: Any, rows: int) -> tuple[Any, Any, int]:
    """(block, index, copies): the item block and the ANN index tiled to ``rows`` rows (at
    least the block's own), each copy of an item under id + copy x offset, the copies in
    sorted id order as a block keeps them. The ranker's prepared rows and the index's
    vectors are repeated, so a copy costs what its original costs."""
    import faiss
    import numpy as np
    import torch

    from recassets.retrieval.index import ItemIndex, set_nprobe

    m = len(block.ids)
    if rows <= m:
        return block, index, 1
    copies = math.ceil(rows / m)
    offset = int(max(block.ids.max(), index.item_ids.max())) + 1

    def rep(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a] * copies)[:rows]

    ids = np.concatenate([block.ids + c * offset for c in range(copies)])[:rows]
    p = block.prepared

    def trep(t: torch.Tensor) -> torch.Tensor:
        return t.repeat(copies, *([1] * (t.dim() - 1)))[:rows].contiguous()

    prepared = (
        None
        if p is None
        else dataclasses.replace(
            p,
            embeddings=trep(p.embeddings),
            dense_pre=trep(p.dense_pre),
            first_low_rank=trep(p.first_low_rank),
            sequence=None
            if p.sequence is None
            else dataclasses.replace(p.sequence, c=trep(p.sequence.c), cc=trep(p.sequence.cc)),
        )
    )
    tiled = dataclasses.replace(
        block,
        ids=ids,
        category=rep(block.category),
        category_code=rep(block.category_code),
        rows={f: rep(a) for f, a in block.rows.items()},
        dense=rep(block.dense),
        engagements_7d=rep(block.engagements_7d),
        engagements_28d=rep(block.engagements_28d),
        trending=rep(block.trending),
        fresh=rep(block.fresh),
        found=rep(block.found),
        prepared=prepared,
    )
    n = index.index.ntotal
    if index.info.nprobe is not None:
        faiss.extract_index_ivf(index.index).make_direct_map()
    vectors = index.index.reconstruct_n(0, n)
    vcopies = math.ceil(rows / n)
    big = np.ascontiguousarray(np.concatenate([vectors] * vcopies)[:rows], dtype=np.float32)
    big_ids = np.concatenate([index.item_ids + c * offset for c in range(vcopies)])[:rows]
    fresh = faiss.index_factory(vectors.shape[1], index.info.factory, index.index.metric_type)
    if not fresh.is_trained:
        fresh.train(big)
    fresh.add(big)
    if index.info.nprobe is not None:
        set_nprobe(fresh, index.info.nprobe)
    info = dataclasses.replace(index.info, n=rows)
    return tiled, ItemIndex(index=fresh, item_ids=big_ids, info=info), copies


# --- the ranker's arithmetic and the core's peak ---------------------------------------------


def served_macs(ranker: Any) -> dict[str, int]:
    """Multiply-adds per candidate of the DCN-v2's served form (``DCNv2.score_prepared``),
    from its layer shapes: the cross counters' projection (ncross x P), the first cross
    layer's low-rank product of the dense projection (P x r; its item-embedding columns are
    prepared per catalog and its user columns computed once a request), each cross layer's
    W (r x X) and, after the first, V (X x r), and x0 * (..) + x (X); the deep MLP (in x out
    per layer) and the head. ``interaction`` is the whole interaction network on a full x0
    (the first layer's V over all X columns), the figure docs/benchmarks.md quotes."""
    cfg = ranker.config
    kernels = ranker.kernels()
    p = cfg.dense_dim
    cross = 0
    first_full = first_served = 0
    for i, (vt, wt, _) in enumerate(kernels.cross):
        x, r = vt.shape
        assert tuple(wt.shape) == (r, x), (vt.shape, wt.shape)
        cross += r * x + x  # W, then the elementwise x0 * (.) + x
        if i == 0:
            first_full, first_served = x * r, p * r
        else:
            cross += x * r
    deep = sum(int(w.shape[0]) * int(w.shape[1]) for w, _ in kernels.deep)
    head = int(kernels.head[0].numel())
    proj = cfg.num_cross_dense * p
    return {
        "proj": proj,
        "first_served": first_served,
        "served": proj + first_served + cross + deep + head,
        "interaction": first_full + cross + deep + head,
    }


def peak_gflops(size: int, repeats: int = 3) -> tuple[float, list[float]]:
    """GFLOP/s of one ``size``-square float32 matmul on this thread (torch pinned to one
    thread), timed with ``thread_time``: over the mean of ``repeats`` (the statistic the
    stages are reported in, so the ratio compares like with like), and every time in s."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g)
    b = torch.randn(size, size, generator=g)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.thread_time()
        torch.mm(a, b, out=out)
        times.append(time.thread_time() - t)
    return 2 * size**3 / (sum(times) / len(times)) / 1e9, times


# --- the home's other rankers -----------------------------------------------------------------


def light_for(rec: Any, paths: Any) -> Any:
    """The bundle's light ranker, else the home's newest one fitted on the bundle's
    two-tower (a blend bundle carries none: the cascade is timed all the same)."""
    from recassets.training import light as L

    if rec.light is not None:
        return rec.light
    tt = (rec.bundle.manifest.get("lineage", {}).get("two_tower") or {}).get("checkpoint")
    found = L.latest_for(paths, tt) if tt else None
    return L.LightRanker.load(found) if found else None


def sequence_for(rec: Any, paths: Any, tiled_rows: int) -> tuple[Any, Any]:
    """(Ranking, block) of the home's newest sequence-aware ranker over the recommender's
    item load, tiled like the DCN-v2's block; (None, None) when the home has none."""
    from recassets.funnel.items import build_block
    from recassets.funnel.ranking import Ranking
    from recassets.training import inference
    from recassets.training import policy as P

    found = P.latest_checkpoint(paths, P.SEQUENCE_RANKING)
    if found is None:
        return None, None
    model, vocab = inference.load_ranking(str(found), device=rec.device)
    block = build_block(rec.reader, model, vocab, rec.device)
    assert rec.index is not None
    tiled, _, _ = tile(block, rec.index, tiled_rows)
    print(f"sequence-aware ranker: {found} (attends to the newest {model.config.sequence})")
    return Ranking(model, vocab, rec._users, rec.device), tiled
