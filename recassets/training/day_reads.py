"""What the training loop reads of each day, read once for all passes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from recassets.training.data import (
    PartitionCounts,
    SameDayHistory,
    TrainingSource,
    count_partition,
    day_batches,
)


class DayReads:
    """A day's counts, same-day history and training batches, read once for all passes when
    ``keep`` (each read scans and decodes the partition: on ml-100k's 215 days the later
    passes of a from-scratch run re-read the whole table twice).

    Bounded: the histories kept hold at most ``max_rows`` positives, the batches kept at most
    ``max_bytes`` of Arrow memory (1 GiB by default: the whole of ml-100k's examples are about
    a fifth of it); a day that does not fit is read again on each pass, as without ``keep``.
    Kept or re-read, a pass sees the same record batches, so the run is the same."""

    def __init__(self, source: TrainingSource, same_day: bool, *, keep: bool,
                 max_rows: int = 5_000_000, max_bytes: int = 1 << 30) -> None:  # fmt: skip
        self.source, self.same_day, self.keep, self.room = source, same_day, keep, max_rows
        self.bytes_room = max_bytes
        self._counts: dict[str, PartitionCounts] = {}
        self._history: dict[str, SameDayHistory] = {}
        self._batches: dict[tuple[str, tuple[str, ...], int, bool], list[pa.RecordBatch]] = {}

    def counts(self, day: str) -> PartitionCounts:
        if day in self._counts:
            return self._counts[day]
        found = count_partition(self.source, day)
        self._counts.update({day: found} if self.keep else {})
        return found

    def history(self, day: str) -> SameDayHistory | None:
        if not self.same_day or day in self._history:
            return self._history.get(day)
        found = SameDayHistory.read(self.source, day)
        if self.keep and len(found.items) <= self.room:
            self._history[day], self.room = found, self.room - len(found.items)
        return found

    def batches(
        self, day: str, batch_size: int, columns: Sequence[str], positives_only: bool
    ) -> Iterable[pa.RecordBatch]:
        """The day's record batches for ``stream_batches`` (``data.day_batches``); streamed
        as read when not ``keep`` (one pass: nothing to hold a day in memory for)."""
        key = (day, tuple(columns), batch_size, positives_only)
        if key in self._batches:
            return self._batches[key]
        read = day_batches(self.source, day, batch_size, columns, positives_only)
        if not self.keep or self.bytes_room <= 0:
            return read
        found = list(read)
        size = sum(b.nbytes for b in found)
        if size <= self.bytes_room:
            self._batches[key], self.bytes_room = found, self.bytes_room - size
        return found
