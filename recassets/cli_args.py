"""The command line's argument rules: each refuses a bad value before any work, naming it
(argparse types for numbers, ports and days; ``selected`` for ``--select``)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any


def _at_least(text: str, low: int) -> int:
    """``text`` as a whole number of ``low`` or more, else an argparse error naming it."""
    if len(text.strip()) > 30:  # past Python's 4,300-digit limit int() says "invalid literal"
        raise argparse.ArgumentTypeError(f"expected a whole number of at most 30 digits, got "
                                         f"{len(text.strip())} characters")  # fmt: skip
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {low} or more, got {value}")
    return value


def positive(text: str) -> int:
    """An argparse type: an integer of 1 or more (``--k -1`` was a slice: all but the last)."""
    return _at_least(text, 1)


DESCRIPTION = (
    "recassets: a recommendation platform's data and models as Dagster assets. Everything "
    "lives under RECASSETS_HOME (default: .recassets in the current folder)."
)
# ``generate --events-per-day``: a day is built in memory, about 400 bytes an event (10M: 4 GB)
MAX_EVENTS_PER_DAY = 10_000_000
# ... and at least two requests' slates (2 x SyntheticConfig.slate_size, 10: a test holds them
# equal), which SyntheticConfig refuses below: a day keeps whole requests, and fewer landed
# most days empty. Here, not read from the config: parsing must not import numpy.
MIN_EVENTS_PER_DAY = 20


class _Defaults(argparse.HelpFormatter):
    """Help that ends with the option's default, where it has one and does not say it
    already (argparse's own formatter also printed "(default: None)" and "(default: False)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text or not text:
            return action.help
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """A subcommand's parser: each option's default in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Defaults)
        super().__init__(*args, **kwargs)


def synthetic_args(p: argparse.ArgumentParser, days: int, max_days: int) -> None:
    """The synthetic world's options (``demo``, ``generate``)."""
    p.add_argument("--days", type=at_most(max_days), default=days,
                   help=f"days to generate (at most {max_days:,}: a century)")  # fmt: skip
    p.add_argument("--events-per-day", type=events_per_day, default=20_000,
                   help=f"events a day ({MIN_EVENTS_PER_DAY} to {MAX_EVENTS_PER_DAY:,}: a day "
                   "keeps whole requests of 10 impressions, and is built in memory)")  # fmt: skip
    # the population, not only the traffic: --events-per-day alone made a denser stream over
    # the same 2,000 users and 1,000 items, which never reached the catalogue-size paths (FAISS
    # past 100k items, EASE's 10k cap); the ratio of newcomers a day stays the default's 1/20
    p.add_argument("--users", type=population(MAX_POPULATION), default=2_000,
                   help=f"users on the first day (20 to {MAX_POPULATION:,}; a twentieth as "
                   "many new a day)")  # fmt: skip
    p.add_argument("--items", type=population(MAX_POPULATION), default=1_000,
                   help=f"items on the first day (20 to {MAX_POPULATION:,}; a twentieth as "
                   "many new a day)")  # fmt: skip
    p.add_argument("--seed", type=seed, default=7, help="the world's seed")
    p.add_argument("--start", type=day, default="2026-01-01", help="first day (UTC)")


# the world is built in memory (each user's interests over the categories, each item's
# attributes): a million of either is about a gigabyte at the default 20 categories
MAX_POPULATION = 1_000_000


def population(limit: int):  # noqa: ANN201 - an argparse type
    """An argparse type: ``--users`` / ``--items``, 20 (a twentieth of it arrives a day, at
    least one) to ``limit``."""

    def check(text: str) -> int:
        value = at_most(limit)(text)
        if value < 20:
            raise argparse.ArgumentTypeError(f"expected at least 20, got {value}")
        return value

    check.__name__ = "positive"
    return check


def world_sizes(args: argparse.Namespace) -> dict[str, int]:
    """``SyntheticConfig``'s population fields from ``--users`` and ``--items`` (the defaults
    give the default world: 2,000 and 1,000, 100 and 50 new a day)."""
    users, items = getattr(args, "users", 2_000), getattr(args, "items", 1_000)
    return {"initial_users": users, "initial_items": items,
            "new_users_per_day": users // 20, "new_items_per_day": items // 20}  # fmt: skip


def status_lines(paths: Any) -> tuple[list[str], list[str]]:
    """``recassets status``: the home (said when it does not exist), the landed days, each lake
    table's rows and version (one that cannot be read said, not the command ended: an empty
    ``_delta_log`` stopped it naming no table), what serves and how fresh it is
    (``cli_status.serving_lines``); and the tables that cannot be read."""
    from recassets.cli_status import serving_lines
    from recassets.lake import existing_delta

    lines = [f"RECASSETS_HOME {paths.home}"]
    if not Path(paths.home).is_dir():
        lines.append("  (no such folder: nothing landed or built here; a typo? `recassets init` "
                     "or `recassets demo` makes it)")  # fmt: skip
    days = paths.landed_days("events")
    lines.append(
        f"  landing: {len(days)} day(s) of events" + (f", {days[0]} .. {days[-1]}" if days else "")
    )
    unread_landing(paths, lambda m: lines.append("  " + m))
    unread: list[str] = []
    for name, where in _lake_tables(paths):
        try:
            table = existing_delta(where)
            if table is None:
                continue
            rows = table.to_pyarrow_dataset().count_rows()
            lines.append(f"  lake/{name}: {rows} rows, Delta version {table.version()} ({where})")
        except Exception as e:  # noqa: BLE001 - said per table; the others are still listed
            unread.append(f"lake/{name}")
            lines.append(f"  lake/{name}: cannot be read ({plain(e)[:600]})")
    lines.append(f"  lineage manifests: {paths.lineage}")
    lines += serving_lines(paths)  # what serves, and how fresh: cli_status
    lines.append("  Dagster UI: `make dev`, then http://127.0.0.1:3000 (assets grouped by stage)")
    return lines, unread


def _lake_tables(paths: Any) -> list[tuple[str, str]]:
    """(name, location) of the lake's tables: a local lake's folders, or on an object store
    (``s3a://``, which has no folders to list here) the tables the platform writes."""
    from recassets.lineage.audit import QUARANTINE_TABLE
    from recassets.lineage.targets import TABLES

    if "://" in str(paths.lake) and not str(paths.lake).startswith("file://"):
        return [(name, paths.table(name)) for name in sorted({*TABLES, QUARANTINE_TABLE})]
    lake = Path(paths.lake)
    return [(f.name, str(f)) for f in sorted(lake.iterdir())] if lake.is_dir() else []


def at_most(limit: int):  # noqa: ANN201 - an argparse type
    """An argparse type: an integer from 1 to ``limit``."""

    def check(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"expected at most {limit:,}, got {value:,}")
        return value

    check.__name__ = "positive"  # argparse names the type in its message
    return check


def events_per_day(text: str) -> int:
    """An argparse type: ``generate --events-per-day``, ``MIN_EVENTS_PER_DAY`` to
    ``MAX_EVENTS_PER_DAY`` (``--events-per-day 5`` was refused by the config's ValueError,
    naming neither the flag nor the least it takes)."""
    value = at_most(MAX_EVENTS_PER_DAY)(text)
    if value < MIN_EVENTS_PER_DAY:
        raise argparse.ArgumentTypeError(
            f"expected at least {MIN_EVENTS_PER_DAY} (two requests' slates of 10 impressions: "
            f"a day keeps whole requests, and fewer landed most days empty), got {value}"
        )
    return value


def seed(text: str) -> int:
    """An argparse type: a random seed, 0 or more (numpy refuses a negative one)."""
    return _at_least(text, 0)


def folder(text: str) -> str:
    """An argparse type: a non-empty path (an unset shell variable gives ``""``, which must not
    read as the option left out)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    return text


def nonempty(what: str):  # noqa: ANN201 - an argparse type
    """An argparse type: a value that is not empty (``--tag "$TAG"`` with TAG unset served the
    newest bento, as if the option had been left out)."""

    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} is empty (an unset variable?)")
        return text

    check.__name__ = "value"
    return check


def port(text: str) -> int:
    value = positive(text)
    if value > 65_535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {value}")
    return value


def day(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date a daily partition can be (1970-01-01 to 9998-12-31:
    ``dt=9999-12-31`` failed the run inside Dagster with an ``OverflowError``, and a
    generated day before 1970 opened partitions before the epoch)."""
    import re

    from recassets.paths import FIRST_DAY, LAST_DAY

    try:  # YYYY-MM-DD only: fromisoformat also reads 20260101 and the week date 2026W011
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise argparse.ArgumentTypeError(
            f"expected a day from {FIRST_DAY} to {LAST_DAY}, got {text}"
        )
    return value.isoformat()


def few(days: Sequence[dt.date], shown: int = 3) -> str:
    """``dt=`` folder names of ``days``, the first ``shown`` and how many more."""
    names = ", ".join(f"dt={d}" for d in days[:shown])
    return names + (f" and {len(days) - shown} more" if len(days) > shown else "")


def within_partitions(paths: Any, first: str | None, last: str | None) -> None:
    """``SystemExit`` naming the day when ``first``..``last`` reaches outside the daily
    partitions (``PartitionWindow.from_env``: the landed days of a history, or the window
    ``RECASSETS_START_DATE`` / ``RECASSETS_END_DATE`` set), before any run:
    Dagster would fail it with an internal "Partition key range end ... is after the
    partitions definition end time". A landing day deleted after it was materialized is no
    longer a partition; its rows stay in the lake (docs/automation.md, known limits)."""
    from recassets.paths import PartitionWindow

    if first is not None and last is not None and first > last:  # ISO days sort as dates
        raise SystemExit(f"recassets materialize: --first {first} is after --last {last}")
    window = PartitionWindow.from_env(paths)  # the definitions' own window, env included
    # an open window runs to today (UTC), or to the latest landed day up to a week ahead
    today = dt.datetime.now(dt.UTC).date()
    last_day = window.last or today + dt.timedelta(days=window.days_ahead)
    for name, value in (("--first", first), ("--last", last)):
        if value is None:
            continue
        d = dt.date.fromisoformat(value)
        if not window.first <= d <= last_day:
            span = f"{window.first}..{last_day}"
            raise SystemExit(
                f"recassets materialize {name} {value}: outside the daily partitions {span} "
                "(the days landing files cover; a landing day removed after it was "
                "materialized is no partition, and its rows stay in the lake: "
                "RECASSETS_START_DATE / RECASSETS_END_DATE open the window to it)"
            )


def no_synthetic_options(args: argparse.Namespace, defaults: dict[str, Any]) -> None:
    """Refuse ``synthetic_args``' options given beside ``demo --movielens`` (they were
    ignored without a word; ``--events-per-day 7``, which ``generate`` refuses, passed)."""
    names = ("seed", "start", "days", "events_per_day", "users", "items")
    if given := [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) != defaults[n]]:
        raise SystemExit(f"recassets demo: {', '.join(given)} shape generated data; with "
                         "--movielens the release is the data: leave them out")  # fmt: skip


def dated_selection(
    first: str | None, last: str | None, selection: Sequence[str], daily: Sequence[str], log: str
) -> None:
    """Refuse ``--first``/``--last`` where no daily asset takes them (models and serving have
    no days: they were dropped without a word), or where one range would apply to two
    calendars (the landed days and the decision log's served days)."""
    dated = [f"--{n} {v}" for n, v in (("first", first), ("last", last)) if v]
    if dated and not daily and log not in selection:
        raise SystemExit(f"recassets materialize: {' '.join(dated)} name days, and "
                         f"{', '.join(selection)} have none: leave them out")  # fmt: skip
    if dated and daily and log in selection:
        raise SystemExit(f"recassets materialize: {' '.join(dated)} would apply to the landed "
                         f"days and to {log}'s served days: materialize them apart")  # fmt: skip


def window_range(
    paths: Any, first: str, last: str, given_first: str | None, given_last: str | None
) -> tuple[str, str]:
    """The landed ``first``..``last`` within the partition window (``RECASSETS_START_DATE`` /
    ``_END_DATE`` narrow it: a default outside it was refused naming ``--first``, an option
    the user never gave), and a one-sided range past the other end named by its own option."""
    from recassets.paths import PartitionWindow

    window = PartitionWindow.from_env(paths)
    first = max(first, window.first.isoformat())
    last = min(last, window.last.isoformat()) if window.last else last
    if given_first is None and given_last is not None and given_last < first:
        raise SystemExit(f"recassets materialize: --last {given_last} is before the first "
                         f"daily partition, {first}")  # fmt: skip
    if given_last is None and given_first is not None and given_first > last:
        raise SystemExit(f"recassets materialize: --first {given_first} is after the last "
                         f"daily partition, {last}")  # fmt: skip
    return first, last


def landed_range(paths: Any, say: Any = print) -> tuple[str, str]:
    """The first and last landed day of events that open partitions (``paths.partition_days``);
    the others are said and left out (a stray ``dt=2099-01-01`` was 27,337 days to build)."""
    from recassets.paths import partition_days

    days, far = partition_days(paths.landed_days("events"))
    if far:
        say(f"left out: {few(far)} in {paths.landing}/events, before 1970 or more than a week "
            "after today (UTC): no partition (rename the folder to its day)")  # fmt: skip
    if not days:
        raise SystemExit(
            f"recassets: nothing has landed in {paths.landing}/events; run `recassets generate` first"
        )
    unread_landing(paths, say)
    return days[0].isoformat(), days[-1].isoformat()


def unread_landing(paths: Any, say: Any = print) -> None:
    """Say what no partition reads, and where it belongs: each dimension's landing days
    before the first daily partition (a users export laid out by sign-up day, its older
    sign-ups before the first event, was never ingested, without a word), and files or
    folders under a landing that are no day folder (``events/stray.jsonl``, ``dt=2026-02-30``),
    which only the landing sensor's log named."""
    from recassets.paths import PartitionWindow

    first = PartitionWindow.from_env(paths).first
    for dataset in ("users", "items"):
        early = [d for d in paths.landed_days(dataset) if d < first]
        if early:
            say(f"left out: {dataset} landed on {few(early)}, before the first daily partition "
                f"{first}: never ingested; copy those files into {dataset}/dt={first} under "
                f"names of their own (prefixed with their day: the days' files may share a "
                f"name), then materialize lake/{dataset} for {first} ({dataset} land on the day "
                "first seen or later)")  # fmt: skip
    for dataset in ("events", "users", "items"):  # what no day folder holds is never read
        root = Path(paths.landing) / dataset
        beside = sorted(root.iterdir()) if root.is_dir() else []
        stray = [p.name for p in beside if p.is_file() and not p.name.startswith((".", "_"))]
        odd = paths.odd_landing_folders(dataset)
        if stray or odd:
            names = ", ".join([*odd[:3], *stray[:3]])
            say(f"left out: {names} in {root}: no dt=YYYY-MM-DD day folder, never read; land "
                f"files in {dataset}/dt=<day>/")  # fmt: skip


def failure_tail(log: str, lines: int = 40) -> str:
    """What a failed run's log shows the user: its last Python traceback down to the error it
    ended with and that error's next lines (a message may run over several), then, when the
    log goes on after it, the log's last lines (how the run really ended); without a
    traceback, the last ``lines``. A run that died before its first event had Spark's
    start-up lines (the warm-up thread's) as its tail, burying the error that ended it."""
    rows = log.splitlines(keepends=True)
    starts = [i for i, r in enumerate(rows) if r.startswith("Traceback (most recent call last)")]
    if not starts:
        return "".join(rows[-lines:])
    at = starts[-1]
    # the error line: the first after the frames that is not indented, and 3 more
    end = next((i for i in range(at + 1, len(rows)) if not rows[i][:1].isspace()), len(rows) - 1)
    block, rest = rows[at : end + 4], rows[end + 4 :]
    tail = lines // 4 if rest else 0
    room = lines - tail - (1 if rest else 0)
    if len(block) > room:
        block = [*block[:8], "  ...\n", *block[-(room - 9) :]]
    if rest:
        block = [*block, "  ... (the log's end)\n" if len(rest) > tail else "", *rest[-tail:]]
    return "".join(block) + _storage_hint(rows[at:])


def _storage_hint(rows: Sequence[str]) -> str:
    """What a failure of the Dagster instance's own SQLite storage means: a full disk, or a
    file locked by another process (it ended in 40 lines of SQLAlchemy, naming neither)."""
    text = "".join(rows)
    if "sqlite3.OperationalError" not in text:
        return ""
    why = ("locked by another process (a `dagster dev` or daemon writing it?)" if
           "database is locked" in text else "on a full disk or a folder it cannot write?")  # fmt: skip
    return (f"recassets: the Dagster instance's storage (DAGSTER_HOME, its history/ and "
            f"storage/ files) could not be written: {why} Runs it had begun are reaped by the "
            "next command.\n")  # fmt: skip


def selected(select: str | None, default: Sequence[str], more: Sequence[str]) -> Sequence[str]:
    """``--select``'s keys, each one of ``default`` or ``more`` (what the CLI materializes);
    none given: ``default``. An unknown key (a typo) or an empty list (an unset shell
    variable) is refused here, before Spark or Dagster start, naming it: not a failed run to
    read the end of, nor everything."""
    if select is None:
        return default
    keys = [k.strip() for k in select.split(",") if k.strip()]
    known = (*default, *more)
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        what = f"unknown asset {', '.join(unknown)}" if unknown else "no asset given"
        raise SystemExit(f"recassets materialize --select: {what}; choose from {', '.join(known)}")
    return keys


def _name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes (255 where it won't say)."""
    try:
        return os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no such folder, or no pathconf (Windows)
        return 255


def out_file(command: str, out: str) -> None:
    """Refuse ``--out`` before any work when it cannot become a file: empty, a folder, in a
    folder that does not exist, or naming what is not a plain file: a symlink, a device, a pipe
    (the file is written beside and renamed over its name: ``--out /dev/full`` replaced the
    device with a report, and a symlink was replaced, its target left as it was), ending in a
    slash (``r.html/`` wrote ``r.html``), or with a name longer than the file system takes
    (``OSError: File name too long`` after all the work)."""
    target = Path(out)
    size, longest = len(os.fsencode(target.name)), _name_max(target.parent)
    if size > longest:  # before any stat, which fails on it too ("File name too long")
        shown = f"{out[:80]!r}{'...' if len(out) > 80 else ''}"
        raise SystemExit(f"recassets {command} --out {shown}: its file name is {size} bytes, "
                         f"more than the {longest} its file system takes; name a shorter one")  # fmt: skip
    odd = target.is_symlink() or (target.exists() and not target.is_file())
    why = (
        "an empty path" if not out.strip()
        else "a folder" if target.is_dir()
        else "a folder's name (it ends in a slash)" if out.endswith(("/", os.sep))
        else f"its folder {target.parent} does not exist" if not target.parent.is_dir()
        else "a symlink, device or pipe, not a plain file" if odd
        else None
    )  # fmt: skip
    if why:
        raise SystemExit(f"recassets {command} --out {out!r}: {why}; name a file to write")
    import tempfile

    try:  # a folder that takes no file (read-only, /proc): said now, not after all the work
        with tempfile.TemporaryFile(dir=target.parent):  # as the writer's temporary beside it
            pass
    except OSError as e:
        raise SystemExit(f"recassets {command} --out {out!r}: its folder {target.parent} takes "
                         f"no new file ({e.strerror or e}); name a file elsewhere") from None  # fmt: skip


__all__ = ["at_most", "day", "folder", "out_file", "port", "positive", "seed", "selected"]


# The signals that stop a command: a terminal's Ctrl-C (SIGINT), a supervisor's stop
# (SIGTERM: timeout, systemd, Kubernetes), a closed terminal (SIGHUP).
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def stopping_with(proc: Any) -> Generator[list[int]]:
    """While the body runs, a stop signal to this process is passed to ``proc`` (SIGINT as
    SIGINT, the others as SIGTERM): its Dagster run is interrupted and marked failed, and the
    body goes on reading its output to the end; a second signal kills ``proc``'s process group
    (``proc`` started with ``start_new_session=True``). Yields the signals received (empty:
    none). Without this, a signal to the CLI ended the CLI alone and its run went on, unseen:
    it committed tables and built a bento after the operator had stopped it (probe, 2026-12-06).

    The first goes to ``proc`` alone, not its group: the group holds the Spark driver JVM,
    which pyspark starts ignoring SIGINT only, so a SIGTERM to the group ended the JVM while
    the interrupted run undid its writes through it (``recassets.undo``: a Delta RESTORE), and
    a commit that had landed stayed ahead of Dagster (review, 2026-12-07). The JVM ends when
    ``proc`` does (pyspark's stdin pipe); its other children ``proc`` stops as its run ends."""
    import os
    import signal

    got: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        got.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if len(got) > 1:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    before = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name)
        if signal.getsignal(number) is signal.SIG_IGN:
            continue  # ignored by whoever started us (nohup: SIGHUP; `cmd &` in a script: SIGINT)
        before[number] = signal.signal(number, forward)
    try:
        yield got
    finally:
        for number, handler in before.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def said_stopped(signals: Sequence[int], code: int, log: Any) -> None:
    """After ``stopping_with``: a command stopped by a signal exits 128 + its number (as a
    shell reports it), saying that its run was stopped, not that a step failed. A signal
    that came once the run had ended well (exit 0) stopped nothing: said as that."""
    import signal
    import sys

    if signals and code == 0:
        print(f"recassets: {signal.Signals(signals[0]).name} came after the run had finished; "
              "it stopped nothing", file=sys.stderr)  # fmt: skip
    elif len(signals) > 1:  # the second signal killed the run's process (SIGKILL)
        name = signal.Signals(signals[0]).name
        print(f"recassets: stopped by {name}, then killed by a second signal: its run may be "
              "left in progress; the next recassets command (or the daemon's landing sensor) "
              f"marks it failed and frees its pool slots (log: {log})", file=sys.stderr)  # fmt: skip
        raise SystemExit(128 + signals[0])
    elif signals:
        name = signal.Signals(signals[0]).name
        print(f"recassets: stopped by {name}: the run was interrupted and marked failed; the "
              f"steps it had finished stay done (log: {log})", file=sys.stderr)  # fmt: skip
        raise SystemExit(128 + signals[0])


LOCATION_VARS = ("RECASSETS_HOME", "RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS",
                 "RECASSETS_LINEAGE", "RECASSETS_BENTOML_HOME", "DAGSTER_HOME")  # fmt: skip


def refuse_file_locations() -> None:
    """A location variable naming a file is refused before any command: read as a folder, it
    was a landing of 0 days, an empty lake."""
    import os

    for name in LOCATION_VARS:
        where = os.environ.get(name, "").strip()
        if where and "://" not in where and Path(where).expanduser().is_file():
            raise SystemExit(f"recassets: {name}={where} is a file, not a folder")


def end_if_reader_left(error: BaseException) -> None:
    """A reader that closed stdout early (``recassets lineage latest | head -1``) ends the
    command as it ends any writer to a pipe: silently, exit 141 (128 + SIGPIPE), not with a
    ``BrokenPipeError`` (Python ignores SIGPIPE). Another broken pipe (a subprocess's)
    returns, to be said as any error is."""
    if isinstance(error, BrokenPipeError) and _reader_gone():
        raise SystemExit(141) from None


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has left; if so, stdout is pointed at /dev/null,
    so that the interpreter's last flush does not fail again ("Exception ignored ...")."""
    import os
    import select
    import sys

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced by an object with no descriptor
        return False
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poll.poll(0)):
        return False  # stdout still has its reader
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
    return True


def mute_if_reader_left() -> None:
    """After any end of a command, its own ``SystemExit`` included (a failed ``--verify``
    says why on stderr, exit 1): stdout's buffer flushed, or dropped when its reader left."""
    import sys

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    except (AttributeError, ValueError, OSError):
        pass


def plain(error: BaseException) -> str:
    """An error's text without terminal colour codes (delta-rs colours its causes: a
    ``[31m`` ahead of each line reached the one-line error)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))
