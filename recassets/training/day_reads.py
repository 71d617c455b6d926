"""What the training loop reads of each day besides its batches, read once for all passes."""

from __future__ import annotations

from recassets.training.data import (
    PartitionCounts,
    SameDayHistory,
    TrainingSource,
    count_partition,
)


class DayReads:
    """A day's counts and same-day history, read once for all passes when ``keep`` (each read
    scans the partition: a third of the ranker's time on many small days); the histories kept
    hold at most ``max_rows`` positives (re-read beyond)."""

    def __init__(self, source: TrainingSource, same_day: bool, *, keep: bool,
                 max_rows: int = 5_000_000) -> None:  # fmt: skip
        self.source, self.same_day, self.keep, self.room = source, same_day, keep, max_rows
        self._counts: dict[str, PartitionCounts] = {}
        self._history: dict[str, SameDayHistory] = {}

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
