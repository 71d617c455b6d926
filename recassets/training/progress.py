"""Progress lines of a long fit, through the ``progress`` callable the assets pass
(``context.log.info``: the CLI and the Dagster run log show it).

On the review's volume home the item similarity fitted for 9 minutes and the ranker trained
for more than 13 with nothing said, so a slow run could not be told from a hung one (review,
2026-12-07). A fit now says where it is: one line when a pass (or a stage) ends, and within
one at most a line every ``EVERY_S`` seconds, so a long run says it is alive and a short one
stays quiet.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Generator

EVERY_S = 30.0  # at most one line within a pass this often

# Where a fit given no ``progress`` says it: set by ``reporting`` around a call whose callers
# in between do not carry a ``progress`` (``policy.train_next`` and its launchers).
_SAY: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "recassets_progress", default=None
)


@contextlib.contextmanager
def reporting(say: Callable[[str], None] | None) -> Generator[None, None, None]:
    """The fits within say their progress through ``say`` unless given their own."""
    token = _SAY.set(say)
    try:
        yield
    finally:
        _SAY.reset(token)


def _clock() -> float:
    return time.monotonic()


class Progress:
    """Says ``what``'s progress through ``say`` (None: through ``reporting``'s, if any)."""

    def __init__(
        self, say: Callable[[str], None] | None, what: str, every_s: float = EVERY_S
    ) -> None:
        self.say_to, self.what, self.every_s = say or _SAY.get(), what, every_s
        self.start = self.last = _clock()

    def elapsed(self) -> str:
        s = int(_clock() - self.start)
        return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"

    def say(self, line: str) -> None:
        """A line now (a pass or a stage ended), ``what`` and the time since the start added."""
        if self.say_to is not None:
            self.say_to(f"{self.what}: {line} ({self.elapsed()} in)")
        self.last = _clock()

    def due(self) -> bool:
        """Whether a line within a pass is due: ``every_s`` passed since the last one."""
        return self.say_to is not None and _clock() - self.last >= self.every_s
