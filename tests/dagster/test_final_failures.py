"""A run whose error a retry cannot mend is not retried; any other failed run still is.

On the instance ``recassets init`` writes (``run_retries``: two re-executions), a Launchpad
mistake made three failed runs, each starting Spark and holding its pool (review of
2026-12-07). The runs here execute in this process on that instance; whether the daemon would
retry is what Dagster itself records at the run's failure (``dagster/will_retry``), read from
storage as the daemon reads it."""

# no `from __future__ import annotations`: Dagster resolves the asset's Config annotation
import datetime as dt
from pathlib import Path

import pytest
from dagster import AssetsDefinition, Config, DagsterInstance, asset, materialize
from pydantic import Field

from assets.failures import RETRY_TAG, is_final, with_final_failures
from definitions import defs
from recassets import instance as embedded
from recassets.ingested import NotIngestedError
from recassets.retrieval.index import IndexFactoryError

WILL_RETRY = "dagster/will_retry"
DAY = dt.date(2026, 1, 15)


@pytest.fixture
def instance(tmp_path: Path):
    assert embedded.write_dagster_yaml(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as inst:
        assert inst.run_retries_enabled
        yield inst


class Bounded(Config):
    target_recall: float = Field(0.95, gt=0.0, le=1.0)
    raise_: str = "none"


@asset
def probe(config: Bounded) -> int:
    if config.raise_ == "not_ingested":
        raise NotIngestedError("the features of 2026-01-15", {"raw_events": [DAY]})
    if config.raise_ == "jvm":
        raise ConnectionRefusedError("the Spark JVM is gone")
    if config.raise_ == "wrapped":
        try:
            raise IndexFactoryError("index factory 'Bogus42' is not one FAISS reads")
        except IndexFactoryError as e:
            raise RuntimeError("building the index failed") from e
    return 1


def _run(instance: DagsterInstance, **config: object) -> dict[str, str]:
    result = materialize(
        with_final_failures([probe]),
        instance=instance,
        run_config={"ops": {"probe": {"config": config}}},
        raise_on_error=False,
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return dict(run.tags)


@pytest.mark.parametrize(
    "config",
    [{"target_recall": 1.5}, {"raise_": "not_ingested"}, {"raise_": "wrapped"}],
    ids=["config-out-of-bounds", "input-never-ingested", "final-error-as-cause"],
)
def test_a_failure_a_retry_cannot_mend_is_not_retried(
    instance: DagsterInstance, config: dict[str, object]
) -> None:
    tags = _run(instance, **config)
    assert tags.get(RETRY_TAG) == "false"
    assert tags.get(WILL_RETRY) == "false"


def test_a_transient_failure_is_still_retried(instance: DagsterInstance) -> None:
    tags = _run(instance, raise_="jvm")
    assert RETRY_TAG not in tags
    assert tags.get(WILL_RETRY) == "true"


def test_every_asset_of_the_code_location_carries_the_hook():
    hooked = {
        key.to_user_string(): {h.name for h in a.hook_defs}
        for a in defs.assets or []
        if isinstance(a, AssetsDefinition)
        for key in a.keys
    }
    assert hooked and all("final_failures" in names for names in hooked.values()), hooked


def test_is_final_follows_the_cause_chain_and_no_further():
    assert is_final(IndexFactoryError("x"))
    outer = RuntimeError("outer")
    outer.__cause__ = NotIngestedError("the features", {"raw_events": [DAY]})
    assert is_final(outer)
    assert not is_final(RuntimeError("a dead JVM")) and not is_final(None)
    loop = RuntimeError("a")
    loop.__cause__ = loop  # a cycle ends the walk
    assert not is_final(loop)
