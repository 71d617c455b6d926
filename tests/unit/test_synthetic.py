"""The synthetic generator: determinism, contracts, a plausible world and a real hidden signal."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recassets.events import AGE_BUCKETS, EVENTS, ITEMS, USERS
from recassets.paths import Paths
from recassets.synthetic import (
    COUNTRIES,
    GENERATED_EVENT_TYPES,
    SyntheticConfig,
    World,
    build_world,
    generate,
    generate_day,
    true_preference,
)

TINY = SyntheticConfig(
    days=2,
    events_per_day=3_000,
    initial_users=60,
    initial_items=40,
    new_users_per_day=5,
    new_items_per_day=3,
    n_categories=5,
    n_creators=10,
    max_rows_per_file=1_000,
)
# Enough traffic for the statistical checks, still well under a second per day.
SMALL = SyntheticConfig(
    days=4,
    events_per_day=20_000,
    initial_users=500,
    initial_items=500,
    new_users_per_day=20,
    new_items_per_day=10,
)
US = 1_000_000
DAY_US = 86_400 * US


def _paths(root: Path) -> Paths:
    # Built directly, not from_env: RECASSETS_* in the environment must not redirect a test.
    return Paths(
        *(str(root / name) for name in ("", "landing", "lake", "artifacts", "lineage", "dagster"))
    )


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (root / "landing").rglob("*") if p.is_file()}


def _landed(root: Path) -> dict[str, bytes]:
    landing = root / "landing"
    return {
        str(p.relative_to(landing)): p.read_bytes()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def _day_start_us(config: SyntheticConfig, day_index: int) -> int:
    start = dt.datetime.combine(config.start, dt.time(), tzinfo=dt.UTC)
    return int(start.timestamp()) * US + day_index * DAY_US


def _us(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()


def _of_type(events: pa.Table, event_type: str) -> pa.Table:
    return events.filter(pc.equal(events["event_type"], event_type))


@pytest.fixture(scope="module")
def small_days() -> tuple[World, list[tuple[pa.Table, pa.Table, pa.Table]]]:
    world = build_world(SMALL)
    return world, [generate_day(world, SMALL, d) for d in range(SMALL.days)]


# --- Determinism --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_same_config_lands_identical_bytes_and_another_seed_differs(tmp_path: Path, fmt: str):
    config = replace(TINY, fmt=fmt)
    generate(_paths(tmp_path / "a"), config)
    generate(_paths(tmp_path / "b"), config)
    generate(_paths(tmp_path / "c"), replace(config, seed=8))
    a, b, c = (_landed(tmp_path / x) for x in "abc")

    assert len(a) > 0
    assert a == b
    assert sorted(a) == sorted(c)  # same layout...
    assert all(a[k] != c[k] for k in a if "events" in k)  # ...different traffic


def test_generating_over_other_landing_files_is_refused_writing_nothing(tmp_path: Path):
    """``generate --seed 8`` over a home's (ingested) files replaced them without a word, and
    lineage then said "changed" of every landed day; another format left two copies of each
    day's events side by side. The same config again writes the same bytes: it passes."""
    paths = _paths(tmp_path)
    generate(paths, TINY)
    before = _landed(tmp_path)
    times = _mtimes(tmp_path)
    generate(paths, TINY)  # a second `make demo`
    assert _landed(tmp_path) == before
    # Untouched, not rewritten: a new modification time is a day landed again to the sensor.
    assert _mtimes(tmp_path) == times
    for other, refusal in (
        (replace(TINY, seed=8), r"this generation is another \(seed 8"),  # its world
        (replace(TINY, fmt="parquet"), "differ from what this generation writes"),  # its bytes
    ):
        with pytest.raises(FileExistsError, match=refusal):
            generate(paths, other)
        assert _landed(tmp_path) == before  # nothing written
    # other days, another world: refused too (tests/unit/test_synthetic_identity.py)
    later = replace(TINY, start=TINY.start + dt.timedelta(days=TINY.days))
    with pytest.raises(FileExistsError, match="holds the synthetic world of seed 7"):
        generate(paths, replace(later, seed=8))
    assert _landed(tmp_path) == before


def test_a_day_regenerates_alone_and_a_longer_horizon_keeps_the_first_days():
    short = build_world(TINY)
    longer_config = replace(TINY, days=5)
    longer = build_world(longer_config)

    for d in range(TINY.days):
        for x, y in zip(
            generate_day(short, TINY, d), generate_day(longer, longer_config, d), strict=True
        ):
            assert x.equals(y)
    assert generate_day(short, TINY, 1)[0].equals(generate_day(build_world(TINY), TINY, 1)[0])
    assert not generate_day(short, TINY, 1)[0].equals(generate_day(short, TINY, 0)[0])


def test_generate_day_refuses_a_foreign_config_or_a_day_outside_the_horizon():
    world = build_world(TINY)
    with pytest.raises(ValueError, match="does not describe this world"):
        generate_day(world, replace(TINY, seed=8), 0)
    with pytest.raises(ValueError, match="outside the horizon"):
        generate_day(world, TINY, TINY.days)
    # Traffic-only knobs may differ: same world, other volume.
    events, _, _ = generate_day(world, replace(TINY, events_per_day=500), 0)
    assert 450 <= events.num_rows <= 500


def test_config_rejects_unknown_format():
    with pytest.raises(ValueError, match="unknown landing format"):
        SyntheticConfig(fmt="csv")


# --- Landing ------------------------------------------------------------------------------------


def test_generate_lands_each_day_split_by_max_rows(tmp_path: Path):
    messages: list[str] = []
    paths = _paths(tmp_path)
    summary = generate(paths, TINY, progress=messages.append)

    world = build_world(TINY)
    expected = [generate_day(world, TINY, d) for d in range(TINY.days)]
    n_events = [e.num_rows for e, _, _ in expected]
    assert summary.days == 2
    assert summary.events == sum(n_events)
    assert summary.users == 60 + 5
    assert summary.items == 40 + 3
    assert messages == [
        f"day 2026-01-01 (1/2): {n_events[0]} events, 60 users, 40 items",
        f"day 2026-01-02 (2/2): {n_events[1]} events, 5 users, 3 items",
    ]
    files_per_day = [math.ceil(n / 1_000) for n in n_events]
    assert files_per_day == [3, 3]  # ~3000 events in files of at most 1000 rows
    assert summary.n_files == sum(files_per_day) + 2 * 2  # plus one users and one items file a day

    for d, (events, users, items) in enumerate(expected):
        day = TINY.start + dt.timedelta(days=d)
        folder = Path(paths.landing_dir("events", day))
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"part-{i:05d}.jsonl" for i in range(files_per_day[d])]
        rows = [json.loads(line) for n in names for line in (folder / n).read_text().splitlines()]
        assert [r["event_id"] for r in rows] == events["event_id"].to_pylist()
        assert max(len((folder / n).read_text().splitlines()) for n in names) == 1_000
        users_file = Path(paths.landing_dir("users", day)) / "part-00000.jsonl"
        items_file = Path(paths.landing_dir("items", day)) / "part-00000.jsonl"
        assert [json.loads(x)["user_id"] for x in users_file.read_text().splitlines()] == users[
            "user_id"
        ].to_pylist()
        assert [json.loads(x)["item_id"] for x in items_file.read_text().splitlines()] == items[
            "item_id"
        ].to_pylist()


def test_parquet_files_carry_the_contract_schema(tmp_path: Path):
    paths = _paths(tmp_path)
    generate(paths, replace(TINY, fmt="parquet", days=1))
    for dataset, contract in (("events", EVENTS), ("users", USERS), ("items", ITEMS)):
        path = Path(paths.landing_dir(dataset, TINY.start)) / "part-00000.parquet"
        assert pq.read_schema(path).remove_metadata() == contract.pyarrow_schema()


# --- Contracts and validity ---------------------------------------------------------------------


def test_tables_have_exactly_the_contract_schemas(small_days):
    _, days = small_days
    for events, users, items in days:
        assert events.schema == EVENTS.pyarrow_schema()
        assert users.schema == USERS.pyarrow_schema()
        assert items.schema == ITEMS.pyarrow_schema()
        for table, contract in ((events, EVENTS), (users, USERS), (items, ITEMS)):
            for f in contract.fields:
                if f.required:
                    assert table[f.name].null_count == 0, f.name


def test_user_and_item_attributes(small_days):
    world, days = small_days
    _, users, items = days[0]
    assert set(users["age_bucket"].to_pylist()) == set(AGE_BUCKETS)
    assert set(users["device"].to_pylist()) == {"android", "ios", "web"}
    assert users["gender"].null_count == users["occupation"].null_count == users.num_rows
    countries = pc.value_counts(users["country"]).to_pylist()
    top = max(countries, key=lambda x: x["counts"])
    assert top["values"] == "US" and top["counts"] > users.num_rows / 5  # skewed
    assert items["title"].to_pylist()[:3] == ["item 1", "item 2", "item 3"]
    creators = items["creator"].to_pylist()
    assert all(c.startswith("c") and 1 <= int(c[1:]) <= SMALL.n_creators for c in creators)
    assert set(items["category"].to_pylist()) <= set(world.categories)
    assert len(world.categories) == SMALL.n_categories


def test_events_are_valid_and_only_involve_existing_users_and_published_items(small_days):
    world, days = small_days
    for d, (events, _, _) in enumerate(days):
        ts = _us(events["ts"])
        start = _day_start_us(SMALL, d)
        assert start <= ts.min() and ts.max() < start + DAY_US
        assert np.all(np.diff(ts) >= 0)  # time order
        ids = events["event_id"].to_pylist()
        assert len(set(ids)) == len(ids)
        assert ids[0] == f"e{(SMALL.start + dt.timedelta(days=d)):%Y%m%d}-00000000"
        assert set(events["event_type"].to_pylist()) == set(GENERATED_EVENT_TYPES)
        assert "rating" not in GENERATED_EVENT_TYPES
        assert set(events["surface"].to_pylist()) == {"home", "explore", "search"}

        user = events["user_id"].to_numpy()
        item = events["item_id"].to_numpy()
        assert np.all(world.user_first_seen[user - 1] <= ts)
        assert np.all(world.item_first_seen[item - 1] <= ts)
        assert user.max() <= world.n_users and item.max() <= world.n_items
        country = np.array(COUNTRIES)
        assert np.array_equal(
            events["country"].to_numpy(zero_copy_only=False), country[world.user_country[user - 1]]
        )

        is_watch = pc.equal(events["event_type"], "watch").to_numpy(zero_copy_only=False)
        assert np.array_equal(events["value"].is_null().to_numpy(zero_copy_only=False), ~is_watch)
        assert pc.min(_of_type(events, "watch")["value"]).as_py() >= 1.0

        # Each request is one user's slate of slate_size impressions.
        imps = _of_type(events, "impression")
        per_request = pc.value_counts(imps["request_id"]).field("counts").to_numpy()
        assert set(per_request) == {SMALL.slate_size}
        slates = imps.group_by("request_id").aggregate([("user_id", "count_distinct")])
        assert set(slates["user_id_count_distinct"].to_pylist()) == {1}

        # Every engagement follows an impression of the same item in the same request.
        shown = {
            (r, i): t
            for r, i, t in zip(
                imps["request_id"].to_pylist(),
                imps["item_id"].to_pylist(),
                _us(imps["ts"]),
                strict=True,
            )
        }
        engaged = events.filter(pc.not_equal(events["event_type"], "impression"))
        for r, i, t in zip(
            engaged["request_id"].to_pylist(),
            engaged["item_id"].to_pylist(),
            _us(engaged["ts"]),
            strict=True,
        ):
            assert shown[(r, i)] <= t


@pytest.mark.parametrize("events_per_day", [2_000, 50_000])
def test_daily_volume_is_within_ten_percent(events_per_day: int):
    config = replace(SMALL, days=2, events_per_day=events_per_day)
    world = build_world(config)
    for d in range(config.days):
        n = generate_day(world, config, d)[0].num_rows
        assert abs(n - events_per_day) <= 0.1 * events_per_day
        assert n <= events_per_day


def test_new_users_and_items_arrive_every_day(small_days):
    _, days = small_days
    next_user, next_item = 1, 1
    for d, (_, users, items) in enumerate(days):
        n_users = SMALL.initial_users if d == 0 else SMALL.new_users_per_day
        n_items = SMALL.initial_items if d == 0 else SMALL.new_items_per_day
        assert users["user_id"].to_pylist() == list(range(next_user, next_user + n_users))
        assert items["item_id"].to_pylist() == list(range(next_item, next_item + n_items))
        next_user += n_users
        next_item += n_items
        start = _day_start_us(SMALL, d)
        for table in (users, items):
            first_seen = _us(table["first_seen"])
            assert start <= first_seen.min() and first_seen.max() < start + DAY_US
    # Yesterday's arrivals are in today's traffic.
    events = days[-1][0]
    newcomers = days[-2][1]["user_id"].to_pylist()
    assert set(newcomers) & set(events["user_id"].to_pylist())


def test_popularity_is_long_tailed_and_ctr_plausible(small_days):
    world, days = small_days
    events = days[-1][0]
    imps = _of_type(events, "impression")
    counts = np.sort(np.bincount(imps["item_id"].to_numpy(), minlength=world.n_items + 1)[1:])[::-1]
    top_share = counts[: world.n_items // 10].sum() / counts.sum()
    assert top_share > 0.35  # uniform exposure would give 0.10
    ctr = _of_type(events, "click").num_rows / imps.num_rows
    assert 0.05 <= ctr <= 0.10


# --- The hidden signal --------------------------------------------------------------------------


def _mean_recall(top: np.ndarray, user_of_click: np.ndarray, item_of_click: np.ndarray) -> float:
    """Mean over users of the share of their clicks whose item is in their row of ``top``."""
    hit = (top[user_of_click] == item_of_click[:, None]).any(axis=1)
    per_user = np.bincount(user_of_click, weights=hit) / np.bincount(user_of_click)
    return float(per_user.mean())


def test_true_preference_broadcasts():
    world = build_world(TINY)
    users, items = np.array([1, 2, 3]), np.array([5, 7])
    matrix = true_preference(world, users[:, None], items[None, :])
    assert matrix.shape == (3, 2)
    assert matrix[2, 1] == true_preference(world, np.array([3]), np.array([7]))[0]
    assert not np.allclose(matrix[0], matrix[1])


def test_true_preference_recalls_held_out_clicks_far_better_than_popularity(small_days):
    world, days = small_days
    *history, (held_out, _, _) = days
    clicks_so_far = np.zeros(world.n_items, dtype=np.int64)
    for events, _, _ in history:
        ids = _of_type(events, "click")["item_id"].to_numpy()
        clicks_so_far += np.bincount(ids - 1, minlength=world.n_items)
    clicks = _of_type(held_out, "click")
    users, user_of_click = np.unique(clicks["user_id"].to_numpy(), return_inverse=True)
    item_of_click = clicks["item_id"].to_numpy()
    k = 20

    scores = true_preference(world, users[:, None], world.item_ids[None, :])
    by_truth = np.argsort(-scores, axis=1, kind="stable")[:, :k] + 1
    by_popularity = np.argsort(-clicks_so_far, kind="stable")[:k] + 1
    popular = np.broadcast_to(by_popularity, (len(users), k))
    # Control: someone else's preferences are no better than popularity, so the check can fail.
    someone_else = by_truth[np.random.default_rng(0).permutation(len(users))]

    truth = _mean_recall(by_truth, user_of_click, item_of_click)
    popularity = _mean_recall(popular, user_of_click, item_of_click)
    control = _mean_recall(someone_else, user_of_click, item_of_click)
    assert len(users) > 200
    assert truth >= 1.5 * popularity
    assert control < 1.5 * popularity


def test_config_refuses_fewer_events_a_day_than_two_slates():
    """``--events-per-day 1`` landed days without an event, saying nothing."""
    for few in (9, 10, 19):  # at 10, 12 days of 20 landed empty
        with pytest.raises(ValueError, match="less than two requests' slates of 10 impressions"):
            replace(TINY, events_per_day=few, slate_size=10)
    assert replace(TINY, events_per_day=20, slate_size=10).events_per_day == 20
    assert replace(TINY, events_per_day=0).events_per_day == 0  # an empty day, on purpose


def test_the_clis_least_events_per_day_is_the_configs():
    """``generate --events-per-day`` refuses below the config's own bound (two slates), named
    by its flag (tests/unit/test_cli_args.py), not by a second opinion of it."""
    from recassets.cli_args import MIN_EVENTS_PER_DAY

    assert MIN_EVENTS_PER_DAY == 2 * SyntheticConfig().slate_size
    assert replace(TINY, events_per_day=MIN_EVENTS_PER_DAY).events_per_day == MIN_EVENTS_PER_DAY
    with pytest.raises(ValueError, match="less than two requests' slates"):
        replace(TINY, events_per_day=MIN_EVENTS_PER_DAY - 1)


def test_two_writers_of_one_landing_zone_are_one_at_a_time(tmp_path: Path):
    """Two generates with other seeds into one home at once both passed their checks before
    either wrote: the zone held two worlds. The second is refused while the first writes."""
    from recassets.landing import writing

    paths = _paths(tmp_path)
    with writing(paths, "generate", own=lambda f: True):
        with pytest.raises(FileExistsError, match="another generate or import is writing"):
            generate(paths, replace(TINY, seed=8))
        assert _landed(tmp_path) == {}  # nothing written by the refused one
    generate(paths, TINY)  # the lock is let go with its holder
    assert len(_landed(tmp_path)) > 0
    # the lock is beside the zone, where a writer on another machine sharing the home sees it
    landing = Path(paths.landing)
    assert (landing.parent / f".{landing.name}.writing.lock").is_file()
    assert not list(landing.rglob("*.lock"))
