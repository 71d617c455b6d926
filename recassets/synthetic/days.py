"""A day of the synthetic world: requests, served slates, clicks and engagements, and the
landing files they become (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.events import EVENTS
from recassets.funnel.campaigns import campaigns_path
from recassets.landing import landing_bytes, write_landing_file, writing
from recassets.paths import Paths
from recassets.synthetic.ads import campaigns_bytes, write_campaigns
from recassets.synthetic.identity import check_world, record_world
from recassets.synthetic.world import (
    _DAY_US,
    _STREAM_EVENTS,
    COUNTRIES,
    DEVICES,
    GENERATED_EVENT_TYPES,
    P_LIKE,
    P_SHARE,
    P_WATCH,
    POPULAR_SHARE,
    SURFACE_P,
    SURFACES,
    GenerationSummary,
    SyntheticConfig,
    World,
    _day_start_us,
    _logit_without_bias,
    _lookup,
    _numbered,
    _rng,
    _sigmoid,
    _timestamps,
    build_world,
)


def _serve_slates(
    rng: np.random.Generator, world: World, published: np.ndarray, slate_size: int
) -> np.ndarray:
    """(R, S) item indices: the serving policy for requests that see ``published`` items each.

    Popularity draws invert the cumulative weight of the published prefix; uniform draws pick
    an index below it. One pass replaces within-slate duplicates by uniform draws, which
    leaves only rare duplicates.
    """
    n_req = len(published)
    cum = np.cumsum(world.item_popularity)
    k = published[:, None]
    target = rng.random((n_req, slate_size)) * cum[k - 1]
    popular = np.minimum(np.searchsorted(cum, target, side="right"), k - 1)
    uniform = (rng.random((n_req, slate_size)) * k).astype(np.int64)
    slate = np.where(rng.random((n_req, slate_size)) < POPULAR_SHARE, popular, uniform)
    order = np.argsort(slate, axis=1, kind="stable")
    ranked = np.take_along_axis(slate, order, axis=1)
    dup_sorted = np.zeros_like(ranked, dtype=bool)
    dup_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    replacement = (rng.random((n_req, slate_size)) * k).astype(np.int64)
    return np.where(dup, replacement, slate)


def generate_day(
    world: World, config: SyntheticConfig, day_index: int
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """One day: ``(events, new_users, new_items)`` as Arrow tables of the contract schemas.

    ``new_users`` / ``new_items`` are those first seen that day (the initial population on day
    0). Events are sorted by ``ts``; ``event_id`` is ``e<yyyymmdd>-<seq:08d>`` and
    ``request_id`` ``r<yyyymmdd>-<seq:08d>``, both numbered in time order.
    """
    if config.world_key() != world.config.world_key():
        raise ValueError("config does not describe this world: rebuild it with build_world")
    if not 0 <= day_index < config.days:
        raise ValueError(f"day_index {day_index} outside the horizon of {config.days} days")
    c = config
    rng = _rng(c.seed, _STREAM_EVENTS, day_index)
    day_start = _day_start_us(c.start, day_index)
    day_end = day_start + _DAY_US
    S = c.slate_size
    ymd = (c.start + dt.timedelta(days=day_index)).strftime("%Y%m%d")

    # Requests. Every request yields at least S events, so ceil(E / S) requests are enough;
    # the day is cut after the last request that keeps the total within events_per_day.
    n_users = int(np.searchsorted(world.user_first_seen, day_end, side="left"))
    fs = world.user_first_seen[:n_users]
    alive = (day_end - np.maximum(fs, day_start)) / _DAY_US
    weight = np.cumsum(world.user_activity[:n_users] * alive)
    n_req = math.ceil(c.events_per_day / S)
    uidx = np.minimum(
        np.searchsorted(weight, rng.random(n_req) * weight[-1], side="right"), n_users - 1
    )
    # A request happens after its user and at least one item exist.
    lo = np.maximum(np.maximum(fs[uidx], day_start), world.item_first_seen[0])
    t_req = lo + (rng.random(n_req) * (day_end - lo)).astype(np.int64)
    published = np.searchsorted(world.item_first_seen, t_req, side="right")
    surface = rng.choice(len(SURFACES), size=n_req, p=SURFACE_P)
    slate = _serve_slates(rng, world, published, S)

    # Engagement from the hidden model, for every impression of every candidate request.
    imp_u = np.repeat(uidx, S)
    imp_i = slate.ravel()
    logit = world.bias + _logit_without_bias(world, imp_u, imp_i)
    p_click = _sigmoid(logit)
    clicked = rng.random(len(imp_i)) < p_click
    ci = np.flatnonzero(clicked)  # impression index of each click
    n_click = len(ci)
    liked = rng.random(n_click) < P_LIKE
    shared = rng.random(n_click) < P_SHARE
    watched = rng.random(n_click) < P_WATCH
    # Dwell: a median of 20 s for a barely wanted item, ~90 s for a sure click.
    # Milliseconds are plenty, and shorter in JSON.
    dwell = np.clip(rng.lognormal(np.log(20.0) + 1.5 * p_click[ci], 0.8), 1.0, 7200.0).round(3)
    click_delay = (rng.lognormal(np.log(5.0), 0.7, n_click) * 1e6).astype(np.int64)
    like_delay = (rng.lognormal(np.log(20.0), 0.8, n_click) * 1e6).astype(np.int64)
    share_delay = (rng.lognormal(np.log(25.0), 0.8, n_click) * 1e6).astype(np.int64)

    per_request = np.full(n_req, S, dtype=np.int64)
    extra = 1 + liked.astype(np.int64) + shared + watched
    per_request += np.bincount(ci // S, weights=extra, minlength=n_req).astype(np.int64)
    kept = int(np.searchsorted(np.cumsum(per_request), c.events_per_day, side="right"))

    # Keep the first `kept` requests (they are i.i.d., so any prefix is a fair sample).
    n_imp = kept * S
    keep_click = ci < n_imp
    ci, liked, shared, watched, dwell, click_delay, like_delay, share_delay = (
        a[keep_click]
        for a in (ci, liked, shared, watched, dwell, click_delay, like_delay, share_delay)
    )

    imp_ts = np.repeat(t_req[:kept], S)
    click_ts = imp_ts[ci] + click_delay
    last = day_end - 1  # engagements stay in the day of their impression
    parts_imp = [np.arange(n_imp), ci, ci[liked], ci[shared], ci[watched]]
    parts_ts = [
        imp_ts,
        click_ts,
        click_ts[liked] + like_delay[liked],
        click_ts[shared] + share_delay[shared],
        click_ts[watched] + (dwell[watched] * 1e6).astype(np.int64),
    ]
    imp_of_event = np.concatenate(parts_imp)
    ts = np.minimum(np.concatenate(parts_ts), last)
    etype = np.concatenate([np.full(len(p), t, dtype=np.int8) for t, p in enumerate(parts_imp)])
    value = np.concatenate([np.full(len(p), np.nan) for p in parts_imp[:4]] + [dwell[watched]])

    # Time order; ties broken by impression (request, slot) then event type: a stable total order.
    order = np.lexsort((etype, imp_of_event, ts))
    imp_of_event, ts, etype, value = imp_of_event[order], ts[order], etype[order], value[order]
    req_of_event = imp_of_event // S
    # Requests numbered in time order.
    req_rank = np.empty(kept, dtype=np.int64)
    req_rank[np.lexsort((np.arange(kept), t_req[:kept]))] = np.arange(kept)
    u_of_event = uidx[req_of_event]

    n = len(ts)
    events = pa.Table.from_arrays(
        [
            _numbered(f"e{ymd}-", np.arange(n)),
            _timestamps(ts),
            pa.array(u_of_event + 1, pa.int64()),
            pa.array(imp_i[imp_of_event] + 1, pa.int64()),
            _lookup(GENERATED_EVENT_TYPES, etype),
            pa.array(value, pa.float64(), mask=np.isnan(value)),
            _lookup(SURFACES, surface[req_of_event]),
            pc.take(_numbered(f"r{ymd}-", np.arange(kept)), pa.array(req_rank[req_of_event])),
            _lookup(COUNTRIES, world.user_country[u_of_event]),
            _lookup(DEVICES, world.user_device[u_of_event]),
        ],
        schema=EVENTS.pyarrow_schema(),
    )
    new_users = world.users_table(_arrivals(world.user_first_seen, day_start, day_end))
    new_items = world.items_table(_arrivals(world.item_first_seen, day_start, day_end))
    return events, new_users, new_items


def _arrivals(first_seen: np.ndarray, day_start: int, day_end: int) -> np.ndarray:
    lo, hi = np.searchsorted(first_seen, [day_start, day_end], side="left")
    return np.arange(lo + 1, hi + 1, dtype=np.int64)


# --- Landing ------------------------------------------------------------------------------------


def _pieces(table: pa.Table, config: SyntheticConfig) -> list[tuple[str, pa.Table]]:
    """(file name, rows) of a day's table split into files of at most
    ``max_rows_per_file`` rows; always at least one (possibly empty) file, so that every
    generated day is visibly landed."""
    step = config.max_rows_per_file
    n_files = max(1, math.ceil(table.num_rows / step))
    return [(f"part-{i:05d}", table.slice(i * step, step)) for i in range(n_files)]


def _write_split(
    paths: Paths, dataset: str, day: dt.date, table: pa.Table, config: SyntheticConfig
) -> list[Path]:
    return [
        write_landing_file(paths, dataset, day, rows, name=name, fmt=config.fmt)
        for name, rows in _pieces(table, config)
    ]


def conflicts(paths: Paths, config: SyntheticConfig, world: World) -> list[Path]:
    """The landing files already in the days ``config`` generates, and the campaigns file,
    that it would not write byte for byte: another seed's, size's or format's, or data of the
    user's own. The same config again writes the same bytes, so a second ``make demo`` passes.
    (Another world in other days: ``identity.check_world``.)"""
    out: list[Path] = []
    ads = campaigns_path(paths.landing)  # replaced by write_campaigns, not in a day folder
    if ads.is_file() and ads.read_bytes() != campaigns_bytes(world, config):
        out.append(ads)
    for d in range(config.days):
        day = config.start + dt.timedelta(days=d)
        held = {
            name: sorted(p for p in Path(paths.landing_dir(name, day)).glob("*")
                         if p.is_file() and not p.name.startswith((".", "_")))
            for name in ("events", "users", "items")
        }  # fmt: skip
        if not any(held.values()):
            continue
        names: tuple[str, ...] = ("events", "users", "items")
        tables: dict[str, pa.Table] = dict(zip(names, generate_day(world, config, d), strict=True))
        for name, files in held.items():
            want = {f"{n}.{config.fmt}": rows for n, rows in _pieces(tables[name], config)}
            out += [
                f for f in files
                if f.name not in want
                or f.read_bytes() != landing_bytes(name, want[f.name], config.fmt)
            ]  # fmt: skip
    return out


def generate(
    paths: Paths,
    config: SyntheticConfig,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Land ``config.days`` days of events, users and items under ``paths.landing``, and the
    world's ad campaigns as ``ads/campaigns.json`` (``synthetic.ads``).

    Users and items land on the day they are first seen (day 0 holds the initial population);
    events are split into files of at most ``config.max_rows_per_file`` rows. Same config,
    byte-identical files.
    """
    with writing(paths, "generate", own=lambda f: f.stem != "movielens"):
        return _generate(paths, config, progress)


def _generate(
    paths: Paths, config: SyntheticConfig, progress: Callable[[str], None] | None
) -> GenerationSummary:
    check_world(paths, config)  # another world in other days: refused by its record
    world = build_world(config)
    if found := conflicts(paths, config, world):
        shown = ", ".join(str(f) for f in found[:3]) + (
            f" and {len(found) - 3} more" if len(found) > 3 else ""
        )
        raise FileExistsError(
            f"{len(found)} landing file(s) in the days to generate or ads/ differ from what this "
            f"generation writes (another seed, size or format, or data of your own; once "
            f"ingested, overwriting them would change what the lake's lineage recorded): "
            f"{shown}; remove those days' folders, or use a fresh RECASSETS_HOME; nothing was written"
        )
    record_world(paths, config)  # first: a generation cut short leaves its files named
    campaigns = write_campaigns(paths, world, config)
    files: list[Path] = []
    totals = {"events": 0, "users": 0, "items": 0}
    for d in range(config.days):
        day = config.start + dt.timedelta(days=d)
        events, users, items = generate_day(world, config, d)
        for name, table in (("users", users), ("items", items), ("events", events)):
            files += _write_split(paths, name, day, table, config)
            totals[name] += table.num_rows
        if progress is not None:
            progress(
                f"day {day} ({d + 1}/{config.days}): {events.num_rows} events, "
                f"{users.num_rows} users, {items.num_rows} items"
            )
    return GenerationSummary(days=config.days, files=tuple(files), campaigns=campaigns, **totals)
