"""What an answer's ``notes`` say when the funnel answered otherwise than asked, and the
error a client's mistake raises (``RequestError``, a 4xx naming the field). Clients may match
the notes: they are constants, the cause in detail is in the service's log (and, for a store
that fails, in ``/info``)."""

from __future__ import annotations

STORE_DOWN = "online store unavailable: answered without the user's features"
NO_ITEMS = "no item features in memory yet (the online store has not loaded them)"
ROWS_DOWN = "embedding rows unavailable: answered by popularity, without the models"
# /rank: what ``rank_request`` notes when it scored on defaults (not a store failure)
RANK_COLD_USER = "user not in the online store: ranked on default user features (cold start)"
RANK_UNKNOWN_ITEMS = (
    "{n} item(s) not in the item features: scored on default features, placed after every "
    "known item"
)


def short_page(notes: list[str], got: int, k: int, catalog: int) -> None:
    """Say why a page holds ``got`` items of ``k``: none in memory (``catalog`` 0: the store
    never loaded the items; "no other item to recommend" said so of an empty page served with
    no catalogue at all), or no other item to recommend. ``NO_ITEMS`` is said once; a full
    page, nothing."""
    if got >= k:
        return
    if catalog:
        notes.append(f"{got} item(s) of k={k}: no other item to recommend")
    elif NO_ITEMS not in notes:
        notes.append(NO_ITEMS)


class RequestError(ValueError):
    """A request the service must refuse with a 4xx; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


__all__ = [
    "NO_ITEMS",
    "RANK_COLD_USER",
    "RANK_UNKNOWN_ITEMS",
    "ROWS_DOWN",
    "STORE_DOWN",
    "RequestError",
    "short_page",
]
