"""A training read that fails names the table, its version, the day and the file.

pyarrow's own error named only the file relative to the table ("Parquet magic bytes not
found"), or nothing at all (an unreadable file: "OSError: Generic LocalFileSystem error" with
delta-rs's terminal colour codes in it), so the failed run said neither which day nor what to
do. A failed read raises before anything is trained, so the model in place stays served.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Generator

import pyarrow as pa

from recassets.cli_args import plain


class UnreadableTrainingDayError(RuntimeError):
    """A file of a training day that cannot be read (damaged, gone or not permitted)."""


@contextlib.contextmanager
def named_reads(table: str, version: int, day: dt.date, file: str) -> Generator[None, None, None]:
    try:
        yield
    except (OSError, pa.ArrowException) as e:
        raise UnreadableTrainingDayError(
            f"day {day.isoformat()} of the table {table} (Delta version {version}) cannot be "
            f"read: file {file}: {type(e).__name__}: {plain(e).strip()}; nothing was trained "
            f"and the model in place stays; restore the file, or materialize that day of "
            f"training_examples again, then run again"
        ) from e


__all__ = ["UnreadableTrainingDayError", "named_reads"]
