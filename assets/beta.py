"""``accept_beta``: a Dagster API marked beta, called without its ``BetaWarning``.

Dagster 1.13 warns at every use of a beta API, and the code location loads the definitions in
every process (the code server, the daemon, each run): nine warnings per load, for uses that
are deliberate and reasoned where they are made (single-run backfill policies, the windowed
partition mappings with ``allow_nonexistent_upstream_partitions``, the training data's
observable source). The warning is silenced for that one call, not for the process: a beta API
used anywhere else still warns.
"""

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

from dagster import BetaWarning

F = TypeVar("F", bound=Callable[..., Any])


def accept_beta(factory: F) -> F:
    """``factory`` (a decorator factory such as ``asset``, or a class) whose calls emit no
    ``BetaWarning``; same signature, overloads included."""

    @functools.wraps(factory)
    def call(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BetaWarning)
            return factory(*args, **kwargs)

    return cast(F, call)
