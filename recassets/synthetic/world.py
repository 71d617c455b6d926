"""The synthetic world: its configuration, the users and items with their hidden
interests, quality and popularity, and the preference model clicks come from (see the
package docstring)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.events import AGE_BUCKETS, ITEMS, USERS
from recassets.landing import FORMATS

# --- Vocabularies and their (skewed) probabilities. ------------------------------------------
COUNTRIES = ("US", "IN", "BR", "GB", "DE", "MX", "FR", "JP")
COUNTRY_P = (0.34, 0.16, 0.11, 0.10, 0.08, 0.08, 0.07, 0.06)
DEVICES = ("android", "ios", "web")
DEVICE_P = (0.50, 0.35, 0.15)
AGE_P = (0.07, 0.25, 0.30, 0.18, 0.12, 0.08)  # aligned with recassets.events.AGE_BUCKETS
SURFACES = ("home", "explore", "search")
SURFACE_P = (0.60, 0.25, 0.15)
# Event types the generator emits, in the order used to break timestamp ties. No "rating":
# ratings belong to explicit-feedback sources such as MovieLens.
GENERATED_EVENT_TYPES = ("impression", "click", "like", "share", "watch")
_CATEGORY_NAMES = (
    "news", "sports", "music", "comedy", "gaming", "cooking", "travel", "tech", "fashion",
    "beauty", "fitness", "science", "education", "movies", "pets", "art", "diy", "finance",
    "cars", "nature",
)  # fmt: skip

# --- The hidden preference model. --------------------------------------------------------------
INTEREST_WEIGHT = 3.0  # a: log-interest (ratio to uniform) -> logit; strong, see above
QUALITY_WEIGHT = 1.0  # b: standard-normal quality -> logit
POPULARITY_WEIGHT = 0.1  # c: small intrinsic appeal of popular items
INTEREST_SMOOTHING = 0.05  # share of uniform mass, so log(interest) stays finite (>= log 0.05)
INTEREST_CONCENTRATION = 0.05  # Dirichlet alpha per category: a few favourites per user
ZIPF_EXPONENT = 1.0  # popularity weight = rank ** -ZIPF_EXPONENT
POPULARITY_NOISE = 0.5  # sd of the noise between quality and popularity rank
TARGET_CTR = 0.07
POPULAR_SHARE = 0.7  # policy: share of slate slots drawn by popularity, the rest uniform
P_LIKE, P_SHARE, P_WATCH = 0.30, 0.05, 0.70  # given a click

# Random streams: each (stream, day) pair gets its own generator.
_STREAM_GLOBAL, _STREAM_USERS, _STREAM_ITEMS, _STREAM_EVENTS = 1, 2, 3, 4
_DAY_US = 86_400 * 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic world and of each day's traffic.

    ``events_per_day`` counts all events (impressions and engagements); a day lands within one
    request's worth of it. Fields from ``seed`` to ``n_creators`` (except ``events_per_day``)
    define the world; ``events_per_day``, ``slate_size``, ``fmt`` and ``max_rows_per_file``
    only shape the traffic and the files; ``campaigns`` the ads file (``synthetic.ads``).
    """

    seed: int = 7
    start: dt.date = dt.date(2026, 1, 1)
    days: int = 14
    events_per_day: int = 20_000
    initial_users: int = 2_000
    initial_items: int = 1_000
    new_users_per_day: int = 100
    new_items_per_day: int = 50
    n_categories: int = 20
    n_creators: int = 200
    slate_size: int = 10
    fmt: str = "jsonl"
    max_rows_per_file: int = 200_000
    campaigns: int = 20  # ad campaigns landed at landing/ads/campaigns.json (0: none)

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown landing format {self.fmt!r}: use one of {FORMATS}")
        if self.days < 1 or self.initial_users < 1 or self.initial_items < 1:
            raise ValueError("days, initial_users and initial_items must be at least 1")
        if min(self.new_users_per_day, self.new_items_per_day, self.events_per_day) < 0:
            raise ValueError("per-day counts must not be negative")
        if self.n_categories < 1 or self.n_creators < 1 or self.slate_size < 1:
            raise ValueError("n_categories, n_creators and slate_size must be at least 1")
        # a request lands its slate's impressions and the engagements on them; a day keeps the
        # requests whose running total fits, so a budget near one slate left most days empty
        # (at 10: 12 days of 20; at 15: 1; at 20: none)
        if 0 < self.events_per_day < 2 * self.slate_size:
            raise ValueError(
                f"events per day {self.events_per_day} is less than two requests' slates of "
                f"{self.slate_size} impressions: most days would land empty"
            )
        if self.max_rows_per_file < 1:
            raise ValueError("max_rows_per_file must be at least 1")
        if self.campaigns < 0:
            raise ValueError("campaigns must not be negative")

    def world_key(self) -> tuple:
        """The fields that define the world (two configs with equal keys share a world)."""
        return (
            self.seed, self.start, self.days, self.initial_users, self.initial_items,
            self.new_users_per_day, self.new_items_per_day, self.n_categories, self.n_creators,
        )  # fmt: skip


@dataclass(eq=False)
class World:
    """The whole population over the horizon, with its hidden parameters.

    Arrays are indexed by ``id - 1`` (user ids are 1..n_users, item ids 1..n_items) and sorted
    by ``first_seen``. Timestamps are int64 microseconds since the Unix epoch, UTC.
    Codes index the module vocabularies (``COUNTRIES``, ``DEVICES``, ``AGE_BUCKETS``,
    ``categories``).
    """

    config: SyntheticConfig
    categories: tuple[str, ...]
    user_first_seen: np.ndarray  # (U,) int64 us
    user_country: np.ndarray  # (U,) int8 code
    user_device: np.ndarray  # (U,) int8 code
    user_age: np.ndarray  # (U,) int8 code
    user_interest: np.ndarray  # (U, C) float64, rows sum to 1 (hidden)
    user_activity: np.ndarray  # (U,) float64 > 0 (hidden)
    item_first_seen: np.ndarray  # (I,) int64 us
    item_category: np.ndarray  # (I,) int16 code
    item_creator: np.ndarray  # (I,) int32, creator k is "c<k>" with k >= 1
    item_quality: np.ndarray  # (I,) float64 (hidden)
    item_popularity: np.ndarray  # (I,) float64 Zipf weight, exposure of the popular policy
    log_popularity_mean: float  # mean log weight of the initial catalogue (centres the term)
    bias: float  # calibrated intercept of the click logit (hidden)

    @property
    def n_users(self) -> int:
        return len(self.user_first_seen)

    @property
    def n_items(self) -> int:
        return len(self.item_first_seen)

    @property
    def user_ids(self) -> np.ndarray:
        return np.arange(1, self.n_users + 1, dtype=np.int64)

    @property
    def item_ids(self) -> np.ndarray:
        return np.arange(1, self.n_items + 1, dtype=np.int64)

    def users_table(self, ids: np.ndarray) -> pa.Table:
        """The ``users`` contract rows of ``ids`` (1-based)."""
        idx = np.asarray(ids, dtype=np.int64) - 1
        n = len(idx)
        return pa.Table.from_arrays(
            [
                pa.array(idx + 1, pa.int64()),
                _timestamps(self.user_first_seen[idx]),
                _lookup(COUNTRIES, self.user_country[idx]),
                _lookup(DEVICES, self.user_device[idx]),
                _lookup(AGE_BUCKETS, self.user_age[idx]),
                pa.nulls(n, pa.string()),
                pa.nulls(n, pa.string()),
            ],
            schema=USERS.pyarrow_schema(),
        )

    def items_table(self, ids: np.ndarray) -> pa.Table:
        """The ``items`` contract rows of ``ids`` (1-based)."""
        idx = np.asarray(ids, dtype=np.int64) - 1
        id_str = pc.cast(pa.array(idx + 1, pa.int64()), pa.string())
        return pa.Table.from_arrays(
            [
                pa.array(idx + 1, pa.int64()),
                _timestamps(self.item_first_seen[idx]),
                _lookup(self.categories, self.item_category[idx]),
                pc.binary_join_element_wise(
                    "c", pc.cast(pa.array(self.item_creator[idx]), pa.string()), ""
                ),
                pc.binary_join_element_wise("item ", id_str, ""),
            ],
            schema=ITEMS.pyarrow_schema(),
        )


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` landed: day count, row counts and the files written (the day files;
    the campaigns file, not a day's, apart)."""

    days: int
    events: int
    users: int
    items: int
    files: tuple[Path, ...]
    campaigns: Path | None = None

    @property
    def n_files(self) -> int:
        return len(self.files)


# --- Helpers ------------------------------------------------------------------------------------


def _rng(seed: int, stream: int, day_index: int = 0) -> np.random.Generator:
    # A fixed-length entropy list per (stream, day): independent, reproducible streams.
    return np.random.default_rng([seed, stream, day_index])


def _day_start_us(start: dt.date, day_index: int) -> int:
    midnight = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    return (midnight - _EPOCH) // dt.timedelta(microseconds=1) + day_index * _DAY_US


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), pa.timestamp("us", tz="UTC"))


def _lookup(vocabulary: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pc.take(pa.array(vocabulary, pa.string()), pa.array(np.asarray(codes, dtype=np.int32)))


def _numbered(prefix: str, numbers: np.ndarray, width: int = 8) -> pa.Array:
    """``prefix + zero-padded number`` for each number, built in Arrow (no Python loop)."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width, padding="0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _category_names(n: int) -> tuple[str, ...]:
    if n <= len(_CATEGORY_NAMES):
        return _CATEGORY_NAMES[:n]
    return tuple(f"cat{k:03d}" for k in range(n))


def _sorted_first_seen(rng: np.random.Generator, day_start: int, n: int) -> np.ndarray:
    # Whole seconds within the day, sorted so that ids increase with first_seen.
    return np.sort(day_start + rng.integers(0, 86_400, size=n) * 1_000_000).astype(np.int64)


def _zipf_weights(ranks: np.ndarray) -> np.ndarray:
    return ranks.astype(np.float64) ** -ZIPF_EXPONENT


# --- The world ----------------------------------------------------------------------------------


def build_world(config: SyntheticConfig) -> World:
    """Draw every user and item of the horizon and the hidden model that drives engagement.

    Deterministic in ``config.world_key()``; day ``d``'s arrivals come from their own random
    stream, so the first days of a longer horizon are the same world.
    """
    c = config
    n_cat = c.n_categories
    g = _rng(c.seed, _STREAM_GLOBAL)
    # Category popularity (skewed) and, per age bucket, a tilted prior over categories: the
    # profile features then carry a real (if weak) signal for cold-start users.
    cat_p = _zipf_weights(np.arange(1, n_cat + 1)) ** 0.7
    cat_p = cat_p[g.permutation(n_cat)]
    cat_p /= cat_p.sum()
    age_prior = g.gamma(2.0, 1.0, size=(len(AGE_BUCKETS), n_cat))
    age_prior /= age_prior.sum(axis=1, keepdims=True)
    # Creators: each has a home category; a few are prolific (Zipf over creators).
    creator_home = g.choice(n_cat, size=c.n_creators, p=cat_p)
    creator_p = _zipf_weights(np.arange(1, c.n_creators + 1)) ** 0.8
    creator_p = creator_p[g.permutation(c.n_creators)]
    creator_p /= creator_p.sum()

    users: list[dict[str, np.ndarray]] = []
    items: list[dict[str, np.ndarray]] = []
    initial_scores = np.zeros(0)
    for d in range(c.days):
        start = _day_start_us(c.start, d)
        n_u = c.initial_users if d == 0 else c.new_users_per_day
        n_i = c.initial_items if d == 0 else c.new_items_per_day
        ru = _rng(c.seed, _STREAM_USERS, d)
        age = ru.choice(len(AGE_BUCKETS), size=n_u, p=AGE_P)
        interest = np.zeros((n_u, n_cat))
        for a in range(len(AGE_BUCKETS)):  # one Dirichlet draw per prior, all users at once
            rows = np.flatnonzero(age == a)
            if len(rows):
                alpha = INTEREST_CONCENTRATION * n_cat * age_prior[a]
                interest[rows] = ru.dirichlet(alpha, size=len(rows))
        # Tiny alphas could leave a row with no mass (a uniform row then); smoothing also keeps
        # log(interest) finite.
        mass = np.nan_to_num(interest).sum(axis=1, keepdims=True)
        interest = np.where(
            mass > 0, np.nan_to_num(interest) / np.where(mass > 0, mass, 1), 1 / n_cat
        )
        interest = (1 - INTEREST_SMOOTHING) * interest + INTEREST_SMOOTHING / n_cat
        users.append(
            {
                "first_seen": _sorted_first_seen(ru, start, n_u),
                "country": ru.choice(len(COUNTRIES), size=n_u, p=COUNTRY_P).astype(np.int8),
                "device": ru.choice(len(DEVICES), size=n_u, p=DEVICE_P).astype(np.int8),
                "age": age.astype(np.int8),
                "interest": interest,
                "activity": ru.lognormal(0.0, 1.0, size=n_u),
            }
        )
        ri = _rng(c.seed, _STREAM_ITEMS, d)
        creator = ri.choice(c.n_creators, size=n_i, p=creator_p)
        category = np.where(
            ri.random(n_i) < 0.7, creator_home[creator], ri.choice(n_cat, size=n_i, p=cat_p)
        )
        # Popularity is a Zipf weight of a rank. Ranks follow a noisy quality order: good items
        # tend to become popular, but not reliably. Day 0 ranks its items 1..N; later arrivals
        # take the rank their score would have had among day 0's, so they follow the same law.
        quality = ri.normal(0.0, 1.0, size=n_i)
        score = quality + POPULARITY_NOISE * ri.normal(0.0, 1.0, size=n_i)
        if d == 0:
            initial_scores = np.sort(score)[::-1]
            ranks = np.empty(n_i, dtype=np.int64)
            ranks[np.argsort(-score, kind="stable")] = np.arange(1, n_i + 1)
        else:
            ranks = np.searchsorted(-initial_scores, -score, side="left") + 1
            ranks = np.minimum(ranks, c.initial_items)
        items.append(
            {
                "first_seen": _sorted_first_seen(ri, start, n_i),
                "category": category.astype(np.int16),
                "creator": (creator + 1).astype(np.int32),
                "quality": quality,
                "popularity": _zipf_weights(ranks),
            }
        )

    def cat(parts: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    world = World(
        config=config,
        categories=_category_names(n_cat),
        user_first_seen=cat(users, "first_seen"),
        user_country=cat(users, "country"),
        user_device=cat(users, "device"),
        user_age=cat(users, "age"),
        user_interest=cat(users, "interest"),
        user_activity=cat(users, "activity"),
        item_first_seen=cat(items, "first_seen"),
        item_category=cat(items, "category"),
        item_creator=cat(items, "creator"),
        item_quality=cat(items, "quality"),
        item_popularity=cat(items, "popularity"),
        # Centred on the initial catalogue only, so the model does not depend on the horizon.
        log_popularity_mean=float(np.log(items[0]["popularity"]).mean()),
        bias=0.0,
    )
    world.bias = _calibrate_bias(world, g)
    return world


def _calibrate_bias(world: World, rng: np.random.Generator, n: int = 20_000) -> float:
    """The intercept that makes the expected CTR of the serving policy ``TARGET_CTR``.

    Measured on the initial population only (day 0), by bisection on the mean click
    probability of ``n`` simulated impressions.
    """
    c = world.config
    w = world.user_activity[: c.initial_users]
    users = rng.choice(c.initial_users, size=n, p=w / w.sum()) + 1
    pop = world.item_popularity[: c.initial_items]
    items = np.where(
        rng.random(n) < POPULAR_SHARE,
        rng.choice(c.initial_items, size=n, p=pop / pop.sum()),
        rng.integers(0, c.initial_items, size=n),
    )
    logit = _logit_without_bias(world, users - 1, items)
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() < TARGET_CTR:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _logit_without_bias(world: World, uidx: np.ndarray, iidx: np.ndarray) -> np.ndarray:
    interest = world.user_interest[uidx, world.item_category[iidx]]
    return (
        INTEREST_WEIGHT * np.log(interest * world.config.n_categories)
        + QUALITY_WEIGHT * world.item_quality[iidx]
        + POPULARITY_WEIGHT * (np.log(world.item_popularity[iidx]) - world.log_popularity_mean)
    )


def true_preference(world: World, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """The hidden click logit of each (user, item) pair: ``sigmoid`` of it is p(click | shown).

    ``user_ids`` and ``item_ids`` broadcast like numpy arrays: pass ``users[:, None]`` and
    ``items[None, :]`` for a (users, items) score matrix.
    """
    uidx = np.asarray(user_ids, dtype=np.int64) - 1
    iidx = np.asarray(item_ids, dtype=np.int64) - 1
    return world.bias + _logit_without_bias(world, uidx, iidx)


# --- One day of traffic -------------------------------------------------------------------------
