"""How a MovieLens import (``recassets.movielens``) puts its files in the landing zone: all of
them, and its records, first into a staging folder, then moved in at the end.

Why: written one day at a time straight into the zone, a failure half-way (a full disk on the
third file) left two histories mixed, or events whose users and items never landed, and the
landing sensor ingests a day folder once its files are unchanged for 5 s (no ``_SUCCESS``
needed): half an import got ingested.

What "atomic enough" means here. The staging folder is ``<landing>/.movielens-staging-*``: on
the zone's filesystem, so each move is a rename, and a dot-name, which ``Paths.landed_days``,
the sensor and ingestion skip. Everything slow or likely to fail (parsing, serializing, the
disk filling up) happens before the first move; a failure there removes the staging folder
and the zone and its records are exactly as they were ("nothing was landed"). The moves
themselves are renames: a day folder the zone lacks moves in whole, with its file; in a day
folder the zone has, the file is replaced by ``os.replace``. So no reader ever sees half a file
or a day folder without its file. The switch from the old import to the new is not one atomic
step (a day at a time, in milliseconds: users, then items, then events, then the old days
removed, then the records), because the zone is shared: its dataset folders hold other files
(the sensor's, another dataset's), and swapping a whole dataset folder would also give every
unchanged file a new modification time, which the sensor takes as a day landed again. A file
whose bytes are unchanged is not staged at all and keeps its time. If a move fails part-way
(rare: a rename on one filesystem), the error says that the landing is partly replaced and
that importing again repairs it (the import is idempotent).

A staging folder left by a killed import is removed at the start of the next one: both run
under the zone's one-writer lock (``landing.writing``), so none can belong to a live import.
Staging costs disk: the changed files of the new import sit beside the old until moved.
"""

from __future__ import annotations

import datetime as dt
import errno
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from recassets import atomic
from recassets.landing import FORMATS, landing_bytes
from recassets.paths import Paths

LANDING_NAME = "movielens"
STAGING_PREFIX = ".movielens-staging-"
_SECONDS_PER_DAY = 86_400
# users and items move in before the events that name them
_MOVE_ORDER = ("users", "items", "events")


class Staging:
    """A staging folder under ``landing`` (created here, after removing any a killed import
    left): the import's landing files under ``<dataset>/dt=<day>/`` and its records under
    ``records/``, until ``commit`` moves them in or ``discard`` drops them."""

    def __init__(self, landing: Path):
        self.landing = landing
        self.swept = sweep(landing)
        landing.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=landing))
        self.records = self.folder / "records"
        self.records.mkdir()
        self.kept: set[Path] = set()  # landing files whose bytes this import leaves unchanged

    def land_by_day(
        self,
        dataset: str,
        table: pa.Table,
        seconds: np.ndarray,
        key: np.ndarray,
        fmt: str,
        on_day: Callable[[int, int], None] | None = None,
    ) -> list[tuple[dt.date, Path]]:
        """Stage ``table`` as one file per UTC day of ``seconds``, rows ordered by (seconds,
        key) so that the same input always writes the same bytes. Returns each day and the
        file's path in the landing zone; a file already there with these bytes is not staged
        (moved in, it would get a new time, and the sensor would ingest its day again)."""
        if table.num_rows == 0:
            return []
        order = np.lexsort((key, seconds))
        day_no = seconds[order] // _SECONDS_PER_DAY  # each day taken in turn: no sorted copy
        starts = np.flatnonzero(np.r_[True, day_no[1:] != day_no[:-1]])
        ends = np.r_[starts[1:], len(day_no)]
        epoch = dt.date(1970, 1, 1)
        out = []
        for k, (start, end) in enumerate(zip(starts, ends, strict=True), 1):
            day = epoch + dt.timedelta(days=int(day_no[start]))
            data = landing_bytes(dataset, table.take(pa.array(order[start:end])), fmt)
            where = Path(dataset, f"dt={day.isoformat()}", f"{LANDING_NAME}.{fmt}")
            target = self.landing / where
            if _holds(target, data):
                self.kept.add(target)
            else:
                write_staged(self.folder / where, data)
            out.append((day, target))
            if on_day:
                on_day(k, len(starts))
        return out

    def write_records(self, name: str, kind: str, rows: Iterable[dict]) -> int:
        """Stage ``<name>.<kind>.jsonl`` (rejects, nulled, orphans), one record a line, written
        as the records come (a file of many rejects is never one string); none when ``rows``
        is empty. Returns how many were written."""
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        n = 0
        with open(self.records / f"{name}.{kind}.jsonl", "w", encoding="utf-8") as out:
            for row in itertools.chain([first], rows):
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                n += 1
        return n

    def fail(self, rejects_dir: Path) -> Path | None:
        """Move the staged records to ``<rejects_dir>/failed/`` (an earlier failure's removed):
        beside the landed import's records, never over them. Returns that folder, or None when
        there was no record (nor a folder left)."""
        failed = rejects_dir / "failed"
        shutil.rmtree(failed, ignore_errors=True)
        if not any(self.records.iterdir()):
            return None
        rejects_dir.mkdir(parents=True, exist_ok=True)
        os.replace(self.records, failed)
        return failed

    def commit(self, rejects_dir: Path, keep: set[Path]) -> list[Path]:
        """Move the staged files in (``_MOVE_ORDER``), then remove the ``movielens.*`` landing
        files not in ``keep`` (an earlier import's), then replace the records in
        ``rejects_dir`` with the staged ones (another layout's and ``failed/`` removed).
        Returns the files removed. A failure part-way is raised as an ``OSError`` saying that
        the landing is partly replaced."""
        moved = 0
        try:
            for dataset in _MOVE_ORDER:
                for day_dir in sorted((self.folder / dataset).glob("dt=*")):
                    target = self.landing / dataset / day_dir.name
                    if not target.is_dir():  # the day folder appears with its file whole
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.rename(day_dir, target)
                    else:
                        for f in sorted(day_dir.iterdir()):
                            os.replace(f, target / f.name)
                    moved += 1
            removed = remove_stale(self.landing, keep)
            staged = {f.name for f in self.records.iterdir()}
            if staged:
                rejects_dir.mkdir(parents=True, exist_ok=True)
            for f in sorted(self.records.iterdir()):
                os.replace(f, rejects_dir / f.name)
            for old in rejects_dir.glob("*.jsonl"):  # files this import did not read, or whose
                if old.name not in staged:  # lines are all good now: they describe nothing landed
                    old.unlink()
            shutil.rmtree(rejects_dir / "failed", ignore_errors=True)
        except OSError as e:
            raise OSError(
                e.errno or errno.EIO,
                f"MovieLens import: {oserror_text(e)} while moving the staged files in ({moved} "
                f"day folders moved): the landing zone {self.landing} is partly replaced; "
                "importing again repairs it",
            ) from e
        return removed

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def oserror_text(e: OSError) -> str:
    """``e`` without its "[Errno N]" (the error raised in its place keeps the number)."""
    return f"{e.strerror}: {e.filename}" if e.strerror and e.filename else e.strerror or str(e)


def sweep(landing: Path) -> list[Path]:
    """Remove the staging folders of imports that were killed (``Staging``); call under the
    zone's lock only. Returns them."""
    found = sorted(landing.glob(f"{STAGING_PREFIX}*")) if landing.is_dir() else []
    for folder in found:
        shutil.rmtree(folder, ignore_errors=True)
    return found


def write_staged(path: Path, data: bytes) -> None:
    """``data`` at ``path``, flushed to disk: the move in is then a rename of a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, data)


def _holds(target: Path, data: bytes) -> bool:
    """Whether ``target`` is a plain file holding exactly ``data``."""
    try:
        return target.is_file() and target.stat().st_size == len(data) and (
            target.read_bytes() == data)  # fmt: skip
    except OSError:
        return False


def remove_stale(landing: Path, keep: set[Path]) -> list[Path]:
    """Remove ``movielens.*`` landing files not in ``keep`` (and their then-empty day folders,
    which ``Paths.landed_days`` would still count)."""
    removed = []
    for dataset in _MOVE_ORDER:
        root = landing / dataset
        if not root.is_dir():
            continue
        for fmt in FORMATS:
            for f in sorted(root.glob(f"dt=*/{LANDING_NAME}.{fmt}")):
                if f not in keep:
                    f.unlink()
                    removed.append(f)
                    if not any(f.parent.iterdir()):
                        f.parent.rmdir()
    return removed


# The lake table each landing dataset is ingested into.
_TABLES = {"events": "raw_events", "users": "users", "items": "items"}


def lake_days_lost(paths: Paths, keep: set[Path]) -> list[str]:
    """The days (ISO, sorted) that this import would take out of the landing zone (an earlier
    import's ``movielens.*`` files not in ``keep``, on days ``keep`` lands nothing of that
    dataset) and that the home's lake has ingested (a lineage manifest of the day, or its
    partition folder in a local table). Empty: nothing the lake holds goes missing.

    ``movielens._import`` refuses such an import where a lost day lies after the last day it
    lands, and warns with ``rebuild_command`` otherwise. After: the lake cannot be cut back by
    materializing (a range of events days without landing files is refused as a gap, rightly),
    and the later days kept the old history in ``raw_events``, users' rows later than the new
    ones (which were quarantined as older), an online store ahead of the new history and models
    "up to date": following the printed next step served the old history, exit 0 (review,
    2026-12-07). Before (a corrected dump whose first days moved later): the named range run
    rebuilds them (measured, ``docs/ingestion-and-lineage.md``)."""
    landing = Path(paths.landing)
    lost: set[str] = set()
    for dataset, table in _TABLES.items():
        kept = {f.parent.name for f in keep if f.parent.parent.name == dataset}
        days = {f.parent.name for fmt in FORMATS
                for f in (landing / dataset).glob(f"dt=*/{LANDING_NAME}.{fmt}")
                if f not in keep and f.parent.name not in kept}  # fmt: skip
        lost |= {d.removeprefix("dt=") for d in days if _ingested(paths, table, d)}
    return sorted(lost)


def _ingested(paths: Paths, table: str, day_folder: str) -> bool:
    from recassets.ingest.lineage import lineage_path  # light: no Spark

    day = day_folder.removeprefix("dt=")
    try:
        if Path(lineage_path(paths, table, day)).is_file():
            return True
    except ValueError:  # not a day: no partition of the lake
        return False
    return Path(paths.table(table), day_folder).is_dir()  # a lake without its lineage folder


def check_lake_days(paths: Paths, keep: set[Path], landed: list[str]) -> str | None:
    """Refuse (``ValueError``) an import whose ``lake_days_lost`` include a day after its last
    ``landed`` day (ISO); else the warning to say once it has landed (None: nothing lost)."""
    lost = lake_days_lost(paths, keep)
    later = [d for d in lost if not landed or d > landed[-1]]
    if later:
        shown = later[0] if len(later) == 1 else f"{later[0]}..{later[-1]}"
        raise ValueError(
            f"MovieLens import: this home's lake holds {len(later)} day(s) after this input's "
            f"last day ({shown}), from an earlier import this input does not reproduce. Landed "
            "here, they would stay in the lake, its features, online store and models, and the "
            "home would serve the earlier history (materializing does not cut a lake back). "
            "Import this input into a fresh RECASSETS_HOME (or move this home aside); nothing "
            "was landed"
        )
    if not lost:
        return None
    return (f"warning: the lake holds {len(lost)} day(s) no longer in this input ({lost[0]}.."
            f"{lost[-1]}), which materializing the landed days does not reach: "
            f"`{rebuild_command(lost, landed)}` rebuilds them (a day without landing files "
            "lands empty) and every day after")  # fmt: skip


def rebuild_command(gone: list[str], landed: list[str]) -> str:
    """The command that rebuilds the ``gone`` days (ISO dates, sorted, none after the last
    ``landed`` one: ``lake_days_lost``) and every day after, through the ``landed`` ones: a day
    before the first landed is no daily partition unless ``RECASSETS_START_DATE`` opens the
    window to it. The volume band off, as for every rating history (``describe``'s next step)."""
    first, last = gone[0], landed[-1]
    env = f"RECASSETS_START_DATE={first} " if first < landed[0] else ""
    return f"{env}RECASSETS_VOLUME_BAND=off recassets materialize --first {first} --last {last}"


def orphans(
    source: str, ratings: dict[str, np.ndarray], no_user: np.ndarray, no_item: np.ndarray
) -> Iterable[dict]:
    """One record per landed rating whose user or item the dimension files lack."""
    at = np.flatnonzero(no_user | no_item)
    missing = np.where(no_user[at] & no_item[at], "user, item",
                       np.where(no_user[at], "user", "item"))  # fmt: skip
    columns = (ratings[k][at].tolist() for k in ("line", "user_id", "item_id"))
    for line, u, i, m in zip(*columns, missing.tolist(), strict=True):
        yield {"source_file": source, "dataset": "events", "line": int(line), "user_id": int(u),
               "item_id": int(i), "missing": str(m)}  # fmt: skip
