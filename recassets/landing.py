"""Writing landing files: the one way the generator and the importers hand data to ingestion.

Files land at ``<landing>/<dataset>/dt=YYYY-MM-DD/<name>.jsonl`` (JSON Lines, one object per
line, timestamps as ISO-8601 UTC strings) or ``.parquet`` (microsecond UTC timestamps). Each is
written to a temporary name and renamed into place, so ingestion never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Callable, Generator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recassets import atomic
from recassets.events import CONTRACTS
from recassets.paths import Paths

FORMATS = ("jsonl", "parquet")


def table_to_jsonl(table: pa.Table) -> bytes:
    """Serialize an Arrow table as JSON Lines: timestamps ISO-8601 UTC with a ``Z``, dates
    ISO, nulls written as ``null`` (ingestion reads a null as an absent field).

    Vectorized (Arrow formats the timestamps, pandas writes the lines): a million events take
    a couple of seconds rather than half a minute in a per-row loop.
    """
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return b""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            utc = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
            col = pc.binary_join_element_wise(pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S"), "Z", "")
        elif pa.types.is_date(col.type):
            col = col.cast(pa.string())
        cols.append(col)
    # integer_object_nulls: an int column with nulls stays ints (1, not 1.0) in the JSON.
    frame = pa.table(cols, names=table.column_names).to_pandas(integer_object_nulls=True)
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    return _exact_doubles(text, table).encode()


def _exact_doubles(text: str, table: pa.Table) -> str:
    """``text`` (one JSON object per row) with each double that 15 significant digits do not
    keep written whole (17 at most, the shortest that reads back the same). pandas writes at
    most 15: a MovieLens rating of 3.9999999999999996 landed as 4.0, a positive where Parquet
    kept a negative. Vectorized to find them (Arrow's shortest forms); only those rows are
    rewritten, so a file without one keeps its bytes."""
    import re

    import numpy as np
    import pyarrow.compute as pc

    fixes: dict[int, list[tuple[str, str]]] = {}
    for name in table.column_names:
        col = table.column(name)
        if not pa.types.is_floating(col.type):
            continue
        shortest = pc.cast(col, pa.string())
        digits = pc.utf8_length(pc.replace_substring_regex(
            pc.replace_substring_regex(shortest, r"e.*$|[-.]", ""), r"^0+", ""))  # fmt: skip
        for row in np.flatnonzero(pc.fill_null(pc.greater(digits, 15), False).to_numpy()):
            fixes.setdefault(int(row), []).append((name, shortest[int(row)].as_py()))
    if not fixes:
        return text
    lines = text.split("\n")
    for row, pairs in fixes.items():
        for name, exact in pairs:  # a key follows "{" or ","; inside a string a quote is \"
            key = json.dumps(name, ensure_ascii=False) + ":"
            pattern = r"(?<=[{,])" + re.escape(key) + r"-?[0-9.eE+-]+"
            lines[row] = re.sub(pattern, lambda _m, new=key + exact: new, lines[row], count=1)
    return "\n".join(lines)


def others_landed(paths: Paths, own: Callable[[Path], bool], limit: int = 3) -> list[Path]:
    """Up to ``limit`` landing files of events, users and items that ``own`` does not claim
    (dot- and underscore-names are never landings). A MovieLens import beside the synthetic
    demo's files went through without a word: two histories, 1997 to 2026 under the same ids,
    one lake."""
    found: list[Path] = []
    for dataset in CONTRACTS:
        for f in sorted(Path(paths.landing, dataset).glob("dt=*/*")):
            if f.name.startswith((".", "_")) or own(f):
                continue
            found.append(f)
            if len(found) >= limit:
                return found
    return found


@contextlib.contextmanager
def writing(paths: Paths, what: str, own: Callable[[Path], bool]) -> Generator[None, None, None]:
    """Hold the landing zone's one-writer lock for ``what`` (``generate``, a MovieLens
    import) and, under it, refuse another source's files (``others_landed``). Two generates
    with other seeds into one home at once both passed their checks before either wrote, and
    the zone held two worlds. A lock held elsewhere is refused at once, not waited for."""
    import fcntl

    # The lock is a file beside the zone, in its parent folder (the home), named after it: not
    # in the zone (its scans, and a refused import that leaves no landing folder), and not in
    # this machine's temporary folder, where a writer on another machine sharing the home (two
    # pods on one volume) would not see it, and where every zone ever written left a file.
    root = Path(paths.landing).absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(root.parent / f".{root.name}.writing.lock", os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileExistsError(
                f"{what}: another generate or import is writing to {root} now; run again once "
                "it has ended; nothing was written"
            ) from None
        refuse_others(paths, others_landed(paths, own, limit=4), what)
        yield
    finally:
        os.close(lock)  # the lock goes with it


def refuse_others(paths: Paths, found: list[Path], what: str) -> None:
    """Refuse ``what`` over ``found`` (``others_landed``), naming three and the ways out."""
    if found:
        shown = ", ".join(str(f.relative_to(paths.landing)) for f in found[:3])
        # a home holding a MovieLens import, where `recassets demo` (synthetic) was run: the
        # user most likely wants that import built, not a fresh home (review, 2026-12-07)
        imported = all(f.name.startswith("movielens.") for f in found)
        hint = ("This home holds a MovieLens import: `RECASSETS_VOLUME_BAND=off recassets "
                "materialize` builds it, `recassets demo --movielens DIR` imports and builds "
                "one. For the synthetic demo, use a fresh RECASSETS_HOME" if imported else
                "Use a fresh RECASSETS_HOME (or `make clean-home`), or remove those days' "
                "folders")  # fmt: skip
        raise FileExistsError(
            f"{what}: the landing zone {paths.landing} already holds files of another source "
            f"({shown}{' and more' if len(found) > 3 else ''}); landing beside them would mix "
            f"two histories under the same ids in one lake. {hint}; nothing was written"
        )


def write_landing_file(
    paths: Paths,
    dataset: str,
    day: dt.date,
    table: pa.Table,
    name: str = "part-00000",
    fmt: str = "jsonl",
) -> Path:
    """Land ``table`` (columns of the dataset's contract) as one file of ``day``.

    Returns the file's path. Atomic: written under a dot-name, then renamed. A file already
    there with the same bytes is left alone: rewriting it would give it a new modification
    time, and the landing sensor takes a new time as a day landed again (a second ``make demo``
    re-ingested the whole history under the daemon).
    """
    data = landing_bytes(dataset, table, fmt)
    folder = Path(paths.landing_dir(dataset, day))
    folder.mkdir(parents=True, exist_ok=True)
    return atomic.write_bytes_if_changed(folder / f"{name}.{fmt}", data)


def landing_bytes(dataset: str, table: pa.Table, fmt: str = "jsonl") -> bytes:
    """The bytes ``write_landing_file`` writes for ``table``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown landing format {fmt!r}: use one of {FORMATS}")
    contract = CONTRACTS[dataset]
    table = table.select(contract.names).cast(contract.pyarrow_schema())
    if fmt == "jsonl":
        return table_to_jsonl(table)
    sink = io.BytesIO()
    pq.write_table(table, sink, coerce_timestamps="us")
    return sink.getvalue()


def file_digest(
    path: str | Path, chunk: int = 1 << 20, visit: Callable[[bytes], None] | None = None
) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file, for lineage.

    ``visit`` is handed each block as it is read, so a caller can look at the bytes in the same
    pass (ingestion counts JSON Lines lines this way) rather than read the file again.
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
            if visit is not None:
                visit(block)
    return size, h.hexdigest()
