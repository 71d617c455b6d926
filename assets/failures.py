"""Failures a retry cannot mend are not retried.

The instance re-executes a failed run launched by a sensor or the UI up to twice
(``run_retries`` in ``recassets.instance.DAGSTER_YAML``): a Spark JVM that died or a locked
SQLite file passes on the next try. A run whose own configuration is wrong, or whose input was
never ingested, fails the same way three times: three failed runs per mistake made in the
Launchpad, each starting Spark and holding its pool's one slot for 35-56 s (review of
2026-12-07: ``target_recall: 1.5``, a FAISS factory FAISS does not read, a day whose upstream
was never ingested, a home that does not exist). Dagster's Launchpad cannot see pydantic's
bounds, so it calls such a configuration valid.

``final_failures`` is a failure hook on every asset: when the step's error is one of
``FINAL``, it tags the run ``dagster/retry_on_asset_or_op_failure: false`` before the run
fails, which is what the instance reads (from storage, at the run's failure) to decide a
retry. Any other error is retried as before. The tag stays on the run: a re-execution from the
UI after the mistake is mended copies it, so that re-execution, if it fails again, is not
retried either (its failure is shown at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import AssetsDefinition, HookContext, failure_hook
from pydantic import ValidationError

from recassets.ingest.files import LandingMissingError
from recassets.ingested import NotIngestedError
from recassets.retrieval.index import IndexFactoryError

RETRY_TAG = "dagster/retry_on_asset_or_op_failure"

# Errors of the run's own making or of a missing input: the same run fails the same way.
FINAL: tuple[type[BaseException], ...] = (
    ValidationError,  # the run's config out of its bounds (the Launchpad cannot check them)
    NotIngestedError,  # an upstream day never ingested: materialize it first, as it says
    LandingMissingError,  # no landing folder or no file in it for the day asked
    IndexFactoryError,  # a FAISS index factory string FAISS does not read
)


def is_final(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) is one a retry cannot mend."""
    seen = 0
    while error is not None and seen < 8:  # a cause chain, bounded against cycles
        if isinstance(error, FINAL):
            return True
        error, seen = error.__cause__, seen + 1
    return False


@failure_hook(name="final_failures")
def final_failures(context: HookContext) -> None:
    error = context.op_exception
    if not is_final(error):
        return
    context.instance.add_run_tags(context.run_id, {RETRY_TAG: "false"})
    context.log.warning(
        f"{context.step_key}: {type(error).__name__} is not retried (a retry would fail the "
        "same way): mend what it names, then re-execute this run"
    )


def with_final_failures(assets: Sequence[Any]) -> list[Any]:
    """``assets`` with the ``final_failures`` hook on every ``AssetsDefinition`` (specs of
    external assets run nothing and pass through)."""
    return [
        a.with_hooks({final_failures}) if isinstance(a, AssetsDefinition) else a for a in assets
    ]


__all__ = ["FINAL", "RETRY_TAG", "final_failures", "is_final", "with_final_failures"]
