"""Landing folders as the landing sensor sees them (names, sizes, mtimes: no file is read), and
when their files have settled. ``recassets.freshness`` plans ingestion from these.

Fingerprint
    A day of a dataset (``landing/<dataset>/dt=DAY/``) is summarized by a digest of the sorted
    (file name, size, mtime in ns) of the files ingestion would read (the same rule as
    ``recassets.ingest.list_landing_files``: not dot- or underscore-named). It is compared only
    with fingerprints of the same folder taken earlier (one clock: the file server's), never
    with the sensor's clock. Why not a content hash here: the sensor ticks every 5 s, and
    hashing every landed byte that often costs seconds per GB; name/size/mtime catches every
    write. Content is compared only where a day's files must be matched against the lake's
    lineage (``freshness.lineage_matches``).

Unreadable folders and files
    A folder or file that cannot be listed or stat'ed (another user's 0700 folder, a stale NFS
    handle) is recorded in ``errors`` with its path and the error and left out of the scan;
    the other days go on (one such folder raised out of every tick, and every day waited).

Settling (``settled``)
    A producer that writes a file in place (without the dot-name-and-rename convention) must
    not get it ingested half-written, then again. A day folder holding a ``_SUCCESS`` marker (or
    any folder of a dataset whose producer writes markers) is settled when its marker is at
    least as new as each of its files (both stamped by the file server: one clock). Otherwise
    the landing sensor counts a day settled once it has seen the same fingerprint for
    ``settle_seconds`` by its own clock (decision, 2026-12-07): a file's mtime is the file
    server's clock, and comparing it with the sensor's settled a half-written file at once when
    that clock ran behind, and never when it ran ahead. The cost is one more tick (5 s) before
    a new day goes. A run launched by hand (``wait_until_settled``) also accepts files whose
    mtime is ``settle_seconds`` old: a person launched it over files that were there, and
    ingestion itself fails a run whose files changed while it read them
    (``recassets.ingest.files.unchanged_since_digest``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recassets.paths import DATASETS, Paths

# The producer's "this day folder is complete" file (Hadoop's and Spark's convention); its name
# starts with "_", so ingestion never reads it as data.
SUCCESS_MARKER = "_SUCCESS"


@dataclass(frozen=True)
class LandedDay:
    """One dataset's folder of one day, as the sensor sees it."""

    dataset: str
    day: str
    files: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns), sorted by name
    marker_ns: int | None = None  # mtime of the folder's _SUCCESS marker, if it has one

    @property
    def newest_ns(self) -> int:
        return max((m for _, _, m in self.files), default=0)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.day}"

    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{n}\t{s}\t{m}" for n, s, m in self.files)
        # a file name that is no UTF-8 (a Latin-1 "café") decodes to surrogates: kept as its
        # bytes, not raised (the raise failed every tick, and every day waited behind it)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def oserror_text(e: OSError) -> str:
    """An OSError as one line: what failed, and on which path."""
    what = e.strerror or type(e).__name__
    return f"{what}: {e.filename}" if e.filename else f"{what} ({e})"


def landed_day(paths: Paths, dataset: str, day: str) -> LandedDay:
    """The folder of ``dataset``'s ``day``; an ``OSError`` (naming the path) when it or one of
    its files cannot be listed or stat'ed."""
    folder = Path(paths.landing_dir(dataset, day))
    files = []
    marker_ns = None
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            # Mirrors recassets.ingest.list_landing_files: producers write ".name.tmp" and rename
            if p.name.startswith((".", "_")):
                if p.name == SUCCESS_MARKER and p.is_file():
                    marker_ns = p.stat().st_mtime_ns
                continue
            if p.is_file():
                try:
                    st = p.stat()
                except FileNotFoundError:  # renamed or removed since the listing: not there
                    continue
                files.append((p.name, st.st_size, st.st_mtime_ns))
    return LandedDay(dataset, day, tuple(files), marker_ns)


def scan_landing(
    paths: Paths, datasets: Sequence[str] = DATASETS, errors: dict[str, str] | None = None
) -> dict[str, LandedDay]:
    """Every non-empty day folder of ``datasets``, by ``dataset/day``. Empty folders are left
    out: a folder created before its first file is not a day yet. With ``errors``, a folder
    that cannot be read is recorded there (``dataset/day`` or ``dataset/`` -> why, naming the
    path) and left out; without, its ``OSError`` is raised."""
    out = {}
    for dataset in datasets:
        odd: dict[str, str] = {}  # children of the dataset's folder that cannot be stat'ed
        try:
            days = paths.landed_days(dataset, errors=None if errors is None else odd)
        except OSError as e:
            if errors is None:
                raise
            errors[f"{dataset}/"] = f"cannot be listed ({oserror_text(e)}): no day of it is read"
            continue
        for name, why in odd.items():
            if errors is not None:
                errors[f"{dataset}/{name}"] = f"cannot be read ({why}): left out"
        for day in days:
            try:
                landed = landed_day(paths, dataset, day.isoformat())
            except OSError as e:
                if errors is None:
                    raise
                errors[f"{dataset}/{day}"] = (
                    f"cannot be read ({oserror_text(e)}): left out until it can be"
                )
                continue
            if landed.files:
                out[landed.key] = landed
    return out


def settled(
    landed: LandedDay,
    settle_seconds: float,
    now: float,
    seen: tuple[str, float] | None,
    uses_marker: bool,
    trust_mtime: bool = False,
) -> str | None:
    """None when the day may be ingested, else why it waits.

    * Marker (``uses_marker``: the folder has a ``_SUCCESS``, or its dataset's producer writes
      them): the marker must exist and be at least as new as every file; a file written after
      it (a late file still being written) waits for the producer to write the marker again.
    * Otherwise the same fingerprint must have been seen ``settle_seconds`` ago (``seen``:
      fingerprint, epoch seconds by the observer's clock). ``trust_mtime`` (a run launched by
      hand) also accepts files whose every mtime is that old by ``now``: a comparison across
      two clocks, which the sensor no longer makes (module docstring).
    """
    if uses_marker:
        if landed.marker_ns is None:
            return f"waiting for its {SUCCESS_MARKER} marker"
        if landed.marker_ns < landed.newest_ns:
            return f"a file is newer than its {SUCCESS_MARKER} marker"
        return None
    if settle_seconds <= 0:
        return None
    if trust_mtime and landed.newest_ns <= (now - settle_seconds) * 1e9:
        return None
    if seen is not None and seen[0] == landed.fingerprint and now - seen[1] >= settle_seconds:
        return None
    if trust_mtime:
        return f"files changed less than {settle_seconds:g} s ago (still being written?)"
    return f"files unchanged for less than {settle_seconds:g} s (still being written?)"


class LandingNotSettledError(RuntimeError):
    """Landing files still changing when a run launched by hand stopped waiting for them."""


def wait_until_settled(
    paths: Paths,
    datasets: Sequence[str],
    days: Iterable[str],
    settle_seconds: float,
    timeout_s: float,
    *,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until every landing folder of ``datasets`` x ``days`` has settled (``settled``),
    and return the seconds waited; ``LandingNotSettledError`` naming each folder still
    changing, and why, after ``timeout_s``.

    For runs the sensor did not launch (the UI's materialize dialog, ``recassets
    materialize``): the sensor waits by leaving a day out of its tick; a run asked for by hand
    reads the folders when it starts, so it waits here instead, before anything is read. Files
    whose mtime is ``settle_seconds`` old go at once (``trust_mtime``); otherwise the quiet time
    the wait itself observes counts, as the sensor's does, for a file server whose clock runs
    ahead."""
    if settle_seconds <= 0:
        return 0.0
    wanted, start = set(days), clock()
    seen: dict[str, tuple[str, float]] = {}
    while True:
        now = clock()
        scan = {k: v for k, v in scan_landing(paths, datasets).items() if v.day in wanted}
        marked = {landed.dataset for landed in scan.values() if landed.marker_ns is not None}
        waiting = {}
        for key, landed in scan.items():
            if key not in seen or seen[key][0] != landed.fingerprint:
                seen[key] = (landed.fingerprint, now)
            why = settled(landed, settle_seconds, now, seen[key], landed.dataset in marked, True)
            if why is not None:
                waiting[key] = why
        if not waiting:
            return now - start
        named = "; ".join(
            f"{paths.landing_dir(*key.split('/'))}: {why}" for key, why in sorted(waiting.items())
        )
        if now - start >= timeout_s:
            raise LandingNotSettledError(
                f"{len(waiting)} landing folder(s) still changing after {timeout_s:g} s: {named}"
            )
        if progress is not None:
            progress(f"waiting for landing files to settle ({now - start:.0f} s): {named[:500]}")
        sleep(min(1.0, settle_seconds / 5))


__all__ = [
    "SUCCESS_MARKER",
    "LandedDay",
    "LandingNotSettledError",
    "landed_day",
    "oserror_text",
    "scan_landing",
    "settled",
    "wait_until_settled",
]
