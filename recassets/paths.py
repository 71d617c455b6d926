"""Where things live. The embedded default needs no configuration at all.

``RECASSETS_HOME`` (default ``.recassets/`` in the current working directory, which is the
repo root for ``make`` targets and the Dagster code location) holds::

    landing/<dataset>/dt=YYYY-MM-DD/*.jsonl|*.parquet   files as they arrive
    lake/<table>/                                       Delta tables
    artifacts/                                          checkpoints, indexes, bentos
    lineage/                                            per-partition manifests
    bentoml/                                            the BentoML store
    dagster/                                            the Dagster instance (SQLite)

Each location can be moved on its own with ``RECASSETS_LANDING``, ``RECASSETS_LAKE``,
``RECASSETS_ARTIFACTS``, ``RECASSETS_LINEAGE``, ``RECASSETS_BENTOML_HOME``; the lake may be a
URL (``s3a://bucket/lake``) that Spark understands.

The library takes a ``Paths`` as an argument and never looks at the environment itself.
``Paths.at`` builds one from explicit locations (the Dagster ``LakeResource``, tests);
``Paths.from_env`` and ``PartitionWindow.from_env`` are the edges that read the variables
above, for the processes that have no other configuration: the CLI, the BentoML service, the
definitions' daily partitions (built at import time, before any resource exists).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("events", "users", "items")

# The variables each location is read from at the edge (Paths.from_env), by Paths field; the
# Dagster resources feed the same names through EnvVar (resources/__init__.py).
LOCATION_ENV = {
    "home": "RECASSETS_HOME",
    "landing": "RECASSETS_LANDING",
    "lake": "RECASSETS_LAKE",
    "artifacts": "RECASSETS_ARTIFACTS",
    "lineage": "RECASSETS_LINEAGE",
    "bentoml": "RECASSETS_BENTOML_HOME",
    "dagster_home": "DAGSTER_HOME",
}
DEFAULT_HOME = ".recassets"
START_DATE_ENV = "RECASSETS_START_DATE"
END_DATE_ENV = "RECASSETS_END_DATE"


@dataclass(frozen=True)
class Paths:
    """Resolved storage locations. Strings, so that the lake can be a URL."""

    home: str
    landing: str
    lake: str
    artifacts: str
    lineage: str
    dagster_home: str
    bentoml: str = ""  # the BentoML store (BENTOML_HOME); "" means <home>/bentoml

    def __post_init__(self) -> None:
        if not self.bentoml:
            object.__setattr__(self, "bentoml", str(Path(self.home) / "bentoml"))
        for name in ("home", "landing", "artifacts", "lineage", "bentoml", "dagster_home"):
            value = getattr(self, name)
            if "://" in value:
                # Only the lake goes through Spark and delta-rs, which speak object stores; the
                # rest is read and written with local file calls, and a URL there would become
                # a relative folder named "s3a:" that a pod loses on restart.
                raise ValueError(
                    f"{LOCATION_ENV[name]}={value!r}: only the lake (RECASSETS_LAKE) may be an "
                    f"object-store URL; {name} must be a local or mounted folder "
                    "(docs/deploy.md: a ReadWriteMany volume on Kubernetes)"
                )

    @classmethod
    def at(
        cls,
        home: str | Path | None = None,
        *,
        landing: str | None = None,
        lake: str | None = None,
        artifacts: str | None = None,
        lineage: str | None = None,
        bentoml: str | None = None,
        dagster_home: str | None = None,
    ) -> Paths:
        """The layout under ``home`` (default ``.recassets``, made absolute), any location
        given explicitly replacing its default. Reads no environment variable."""
        if home is not None and "://" in str(home):
            # checked on the text: Path() folds "s3a://b" into "s3a:/b", which would slip past
            # __post_init__'s check and make a folder named "s3a:" in the current directory
            raise ValueError(
                f"{LOCATION_ENV['home']}={str(home)!r}: the home must be a local or mounted "
                "folder; only the lake (RECASSETS_LAKE) may be an object-store URL"
            )
        root = Path(home or DEFAULT_HOME).absolute()
        return cls(
            home=str(root),
            landing=landing or str(root / "landing"),
            lake=lake or str(root / "lake"),
            artifacts=artifacts or str(root / "artifacts"),
            lineage=lineage or str(root / "lineage"),
            dagster_home=dagster_home or str(root / "dagster"),
            bentoml=bentoml or str(root / "bentoml"),
        )

    @classmethod
    def from_env(cls, home: str | None = None) -> Paths:
        """The edge: ``Paths.at`` with each location read from its variable (``LOCATION_ENV``;
        unset or empty: the default under the home). ``home``, when given, wins over
        ``RECASSETS_HOME``. Called at the edges only: the CLI and its helpers, the BentoML
        service, the definitions' daily partitions. A value is read as a shell would have
        given it unquoted: the white space around it dropped (blank: unset) and a leading
        ``~`` expanded (``RECASSETS_HOME=" "`` and a quoted ``"~/h"`` made folders named `` ``
        and ``~`` in the working directory)."""
        env = {field: _location(os.environ.get(name)) for field, name in LOCATION_ENV.items()}
        return cls.at(home or env.pop("home"), **{k: v for k, v in env.items() if k != "home"})

    def landing_dir(self, dataset: str, day: dt.date | str) -> str:
        """The folder one day's files of ``dataset`` land in."""
        return f"{self.landing}/{dataset}/dt={_iso(day)}"

    def table(self, name: str) -> str:
        return f"{self.lake}/{name}"

    def landed_days(
        self, dataset: str = "events", errors: dict[str, str] | None = None
    ) -> list[dt.date]:
        """Days with a landing folder for ``dataset``, sorted (empty folders included).

        ``errors``: where a day folder that cannot be stat'ed (a stale NFS handle) is recorded,
        folder name -> the error, and left out, so that the other days go on (the landing
        sensor); without it, the ``OSError`` is raised. A ``dataset`` folder that cannot be
        listed raises either way."""
        root = Path(self.landing) / dataset
        if not root.is_dir():
            return []
        days = []
        for child in root.iterdir():
            if (day := _day_folder(child.name)) is None:
                continue
            try:
                if child.is_dir():
                    days.append(day)
            except OSError as e:
                if errors is None:
                    raise
                errors[child.name] = f"{e.strerror or type(e).__name__}: {child}"
        return sorted(days)

    def odd_landing_folders(self, dataset: str = "events") -> list[str]:
        """Folders under ``dataset``'s landing that are no ``dt=YYYY-MM-DD`` day (``dt=banana``,
        ``dt=2026-13-45``, ``dt=20260111``), hidden and ``_`` names left out: never read, so
        the landing sensor names them instead of passing over them in silence."""
        root = Path(self.landing) / dataset
        if not root.is_dir():
            return []
        return sorted(
            c.name for c in root.iterdir()
            if not c.name.startswith((".", "_")) and _day_folder(c.name) is None and c.is_dir()
        )  # fmt: skip


def _location(raw: str | None) -> str | None:
    """A location variable's value: stripped (blank: None), ``~`` expanded and made absolute
    (not a URL): a relative ``RECASSETS_LAKE=mylake`` was the CLI's ``./mylake`` and, in the
    run it launched from the repository's folder, another one there."""
    text = (raw or "").strip()
    if not text:
        return None
    return text if "://" in text else os.path.abspath(os.path.expanduser(text))


def _day_folder(name: str) -> dt.date | None:
    """The day of a ``dt=YYYY-MM-DD`` folder name, exactly so (Python reads "20260111" and
    "2026W021" as days too, whose folder would then be looked up as "dt=2026-01-11")."""
    if not name.startswith("dt="):
        return None
    try:
        day = dt.date.fromisoformat(name[3:])
    except ValueError:
        return None
    return day if day.isoformat() == name[3:] else None


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


DEFAULT_START_DATE = dt.date(2026, 1, 1)
# Landed days at most this far after today (UTC) open partitions (clock skew, a producer in a
# zone ahead); a later one does not: one dt=2099-01-01 folder made 26,325 partitions ahead, and
# each of the landing sensor's partition checks took 0.4 s (a tick of 16 days, 19.6 s).
MAX_DAYS_AHEAD = 7
# The days a partition may be: Dagster's time windows start at the epoch, and the day after
# the last must exist (``date.max`` is 9999-12-31).
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)
# Data whose last landed day is at most this many days before today is live: its partitions
# run up to today, so the landing sensor can launch tomorrow's day without a reload.
#
# 30, not 2 (decision, 2026-12-07): the window is computed once, when a process loads the
# definitions. A live feed that had paused for 3 days when the code location (re)started was
# taken for a closed history ending at its last day, and every day landed after the pause was
# skipped by the landing sensor ("not a daily partition") until someone reloaded the code
# location. A feed pausing a month is an outage someone is already looking at; a history
# imported from an archive (MovieLens 1997, the synthetic default of January 2026) ends long
# before that and stays closed, as it should. The cost: a history that ended 3 to 30 days ago
# shows up to 30 empty partitions up to today. A deployment that knows it is live says so
# outright: RECASSETS_END_DATE=open (deploy/helm/values.yaml sets it), and the window never
# closes whatever the pause.
LIVE_WITHIN_DAYS = 30


@dataclass(frozen=True)
class PartitionWindow:
    """The daily partitions the data covers: ``first`` .. ``last`` (inclusive); ``last`` None
    means open, up to today (UTC) or the latest landed day if that lies ahead."""

    first: dt.date
    last: dt.date | None
    days_ahead: int = 0  # open windows: landed days after today (clock skew, a test's future day)

    @property
    def is_open(self) -> bool:
        return self.last is None

    @classmethod
    def from_env(cls, paths: Paths | None = None, today: dt.date | None = None) -> PartitionWindow:
        """The edge for the definitions' daily partitions, built when a process imports them
        (no resource exists yet): ``partition_window`` over ``paths`` (default
        ``Paths.from_env()``) with ``RECASSETS_START_DATE`` and ``RECASSETS_END_DATE`` (a day,
        or ``open``) as its ends."""
        return partition_window(
            paths or Paths.from_env(),
            today,
            start=os.environ.get(START_DATE_ENV),
            end=os.environ.get(END_DATE_ENV),
        )


def partition_window(
    paths: Paths,
    today: dt.date | None = None,
    *,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> PartitionWindow:
    """The days a user sees as partitions: the days the data covers, growing as new days land.

    * ``first``: ``start``, else the first landed day of events, else 2026-01-01.
    * ``last``: ``end`` (a day, or ``"open"``), else, for a history (the last landed day more
      than ``LIVE_WITHIN_DAYS``, 30, before today: an import, the synthetic default), that last
      landed day; for live data (or nothing landed yet), open: up to today. 30 days, so that a
      live feed paused when the code location loads is not taken for a closed history (see
      ``LIVE_WITHIN_DAYS``).

    Why not always up to today: a 1997 MovieLens import would show over 10,000 partitions,
    nearly all grey, "filled" would mean nothing, and the materialize dialog would open on 90
    days without data. Why not always closed: live data lands a new day every day, and the
    partitions are read once, when a process loads the definitions (the code server, the
    daemon, each run). A closed window therefore grows when the code location reloads (``make
    dev`` restarted, or Reload in the UI's Deployment page); the landing sensor names a landed
    day past it in its log instead of launching a run Dagster would refuse.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    days, _far = partition_days(paths.landed_days("events"), today)
    start_ = _day_or_none(start, START_DATE_ENV)
    first = start_ or (days[0] if days else DEFAULT_START_DATE)
    end_ = end.strip() if isinstance(end, str) else end  # quoted as written when refused
    if end_ and str(end_).lower() != "open":
        last = _day_or_none(end_, END_DATE_ENV) or first
        if last < first:
            raise ValueError(
                f"{END_DATE_ENV}={last.isoformat()} is before the first day {first.isoformat()} "
                f"({START_DATE_ENV} or the first landed day)"
            )
        return PartitionWindow(first, last)
    if days and not end_ and days[-1] < today - dt.timedelta(days=LIVE_WITHIN_DAYS):
        return PartitionWindow(first, max(first, days[-1]))
    ahead = max(0, (days[-1] - today).days) if days else 0
    return PartitionWindow(first, None, days_ahead=ahead)


def partition_days(
    days: Sequence[dt.date], today: dt.date | None = None
) -> tuple[list[dt.date], list[dt.date]]:
    """(landed days that open partitions, those that do not): a day folder before 1970 or more
    than ``MAX_DAYS_AHEAD`` after today (UTC) opens none (a typo, a clock, a sentinel
    ``dt=9999-12-31``, which Dagster's daily partitions cannot even represent). The landing
    sensor names such a day in its log; ``recassets materialize`` says it leaves it out. One
    stray ``dt=2099-01-01`` had made the CLI materialize 27,337 days, and closed no history."""
    today = today or dt.datetime.now(dt.UTC).date()
    horizon = today + dt.timedelta(days=MAX_DAYS_AHEAD)
    kept = [d for d in days if FIRST_DAY <= d <= horizon]
    return kept, [d for d in days if not FIRST_DAY <= d <= horizon]


def _day_or_none(day: dt.date | str | None, name: str = "day") -> dt.date | None:
    """``day`` as a date (None when empty); a text that is no date in 1970..9998 is a
    ``ValueError`` naming ``name`` (the variable it came from)."""
    if isinstance(day, dt.date):
        return day
    day = (day or "").strip()
    if not day:
        return None
    try:  # YYYY-MM-DD only: fromisoformat also reads 20260101 and the week date 2026W011
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
            raise ValueError(day)
        parsed = dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"{name}={day[:40]!r}: expected a date YYYY-MM-DD") from None
    if not FIRST_DAY <= parsed <= LAST_DAY:  # a day after it must exist
        raise ValueError(f"{name}={day}: expected a date from 1970-01-01 to 9998-12-31")
    return parsed


def partition_start_date(paths: Paths) -> dt.date:
    """First daily partition (see ``partition_window``)."""
    return partition_window(paths).first
