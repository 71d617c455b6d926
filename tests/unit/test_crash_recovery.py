"""Feature computation, training and the bento build survive being killed: a run SIGKILLed (its
whole process group: Python, the Spark JVM, a ``bentoml build`` child, as a lost container or
the OOM killer would) at several points, then run again, leaves what a clean run leaves, and
what served before the crash still serves after it.

Ingestion's own crash points are in ``test_ingest_crash.py``. Here:

* features: killed between two tables' commits, and while a table's data files are being
  written (before its commit); the half-run leaves each table either as it was or whole, and
  the re-run's tables equal a clean run's row for row;
* training: killed in the middle of the training loop, and while the new checkpoint file is
  being written; ``current.json`` and the checkpoint it names are untouched and load, no partial
  version is left where ``checkpoint_versions`` looks, and the re-run saves the next version;
* the bento build: killed while ``bentoml build`` runs; the latest bento is still the one built
  before, complete, and the next build succeeds and becomes the latest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from deltalake import DeltaTable

from recassets.bento import bundle as B
from recassets.features.pipelines import build_features
from recassets.features.schema import TABLES
from recassets.paths import Paths
from recassets.spark import sweep_scratch
from recassets.training import policy
from recassets.training.checkpoint import Checkpoint
from support import planted
from tests.unit.features.test_backfill import (
    day,
    landed_dimensions,
    landed_events,
    table_differences,
)
from tests.unit.features.test_pipelines import ingest_all, land
from tests.unit.training.tiny import TINY

ROOT = Path(__file__).resolve().parents[2]
RANGE = [day(k) for k in range(30, 35)]

# Shared by every child: SIGKILL the child's whole process group (it was started in a new
# session, so the group is the child, its JVM and its subprocesses, never pytest).
PRELUDE = """
import os, signal, sys, threading, time
from pathlib import Path

def die(*_args, **_kwargs):
    os.killpg(0, signal.SIGKILL)

def die_when_new(folder, pattern, known=None):
    # dies as soon as a file matching pattern appears under folder (a write under way)
    def files():
        try:
            return {p for p in Path(folder).rglob(pattern)}
        except OSError:
            return set()
    before = files() if known is None else known
    def watch():
        while not files() - before:
            time.sleep(0.001)
        die()
    threading.Thread(target=watch, daemon=True).start()
"""


def run_child(code: str, *args: str, tmp: Path | None = None) -> subprocess.CompletedProcess:
    """``tmp``: the child's TMPDIR (where its JVM's scratch goes), for a test that looks at it."""
    env = {**os.environ, "TMPDIR": str(tmp)} if tmp else None
    child = subprocess.run(
        [sys.executable, "-c", PRELUDE + code, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, start_new_session=True, env=env,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stdout[-2000:] + child.stderr[-3000:]
    return child


# --- features -----------------------------------------------------------------------------


FEATURES_CHILD = """
from pyspark.sql.readwriter import DataFrameWriter
from recassets.features.pipelines import build_features
from recassets.spark import get_spark
from tests.conftest import TEST_SPARK_CONF, home_at
from tests.unit.test_crash_recovery import RANGE

home, point, mode = sys.argv[1:4]
paths = home_at(Path(home))
real, calls = DataFrameWriter.save, []

def save(self, path=None, *args, **kwargs):
    calls.append(path)
    if len(calls) == 2 and point == "between_tables":
        die()  # the first table committed, the second not begun
    if len(calls) == 2 and point == "mid_write":
        die_when_new(path, "*.parquet")  # the second table's data files, before its commit
    return real(self, path, *args, **kwargs)

DataFrameWriter.save = save
build_features(get_spark(conf=TEST_SPARK_CONF), paths, RANGE, mode=mode)
print("not killed")
"""


@pytest.fixture(scope="module")
def landed(make_home, spark) -> Paths:
    paths = make_home("crash-src")
    users, items = landed_dimensions()
    land(paths, landed_events(), users, items)
    every_day = [day(k) for k in range(1, 35)]
    ingest_all(spark, paths, every_day, every_day)
    return paths


def copy_lake(source: Paths, make_home, name: str) -> Paths:
    paths = make_home(name)
    shutil.copytree(source.lake, paths.lake)
    return paths


@pytest.fixture(scope="module")
def clean_features(landed, make_home, spark) -> Paths:
    paths = copy_lake(landed, make_home, "crash-clean")
    build_features(spark, paths, RANGE, mode="range")
    return paths


def range_rows(paths: Paths, table: str) -> int:
    """Rows of RANGE's days in ``table`` (0 when the table was never committed)."""
    try:
        dt = DeltaTable(paths.table(table))
    except Exception:  # no commit yet: a table the crash left without a log
        return 0
    first, last = RANGE[0], RANGE[-1]
    return dt.to_pyarrow_table(filters=[("dt", ">=", first), ("dt", "<=", last)]).num_rows


@pytest.mark.parametrize(
    ("point", "mode"),
    [("between_tables", "range"), ("mid_write", "range"), ("mid_write", "daily")],
)
def test_a_killed_feature_run_again_equals_a_clean_run(
    spark, landed, clean_features, make_home, point, mode, tmp_path
):
    paths = copy_lake(landed, make_home, f"crash-{point}-{mode}")
    tmp = tmp_path / "tmp dir"  # a space: the JVM's options must carry it quoted
    tmp.mkdir()
    run_child(FEATURES_CHILD, paths.home, point, mode, tmp=tmp)
    # The killed JVM's jar copies and blocks stay in its process's scratch folder, which the
    # next local start removes (the sweep it runs first); nothing of it is left in TMPDIR.
    root = tmp / f"recassets-spark-{os.getuid()}"
    (left,) = [f for f in root.iterdir() if not f.name.startswith(".")]
    assert list(left.glob("spark-*/userFiles-*/*.jar")) and list(left.glob("blockmgr-*"))
    assert [p.name for p in tmp.iterdir()] == [root.name]
    assert sweep_scratch(root) == [left] and not left.exists()
    order = list(TABLES)
    clean_rows = {t: range_rows(clean_features, t) for t in order}
    crashed = {t: range_rows(paths, t) for t in order}
    if mode == "range":
        # One commit per table: the first whole, the second (killed) and the third absent.
        assert crashed == {order[0]: clean_rows[order[0]], order[1]: 0, order[2]: 0}
    else:
        # Day by day, each (day, table) its own commit: the first day's first table only.
        assert 0 < crashed[order[0]] < clean_rows[order[0]]
        assert crashed[order[1]] == crashed[order[2]] == 0
    # The comparison below tells the crashed state from a clean run's (its failing case).
    assert table_differences(spark, clean_features, paths, order[1], RANGE) != []
    build_features(spark, paths, RANGE, mode=mode)  # the retry
    for table in order:
        assert table_differences(spark, clean_features, paths, table, RANGE) == [], table


# --- training -----------------------------------------------------------------------------


TRAINING_CHILD = """
import torch
from dataclasses import replace
from recassets.training import loop, policy
from tests.conftest import home_at
from tests.unit.training.tiny import TINY

home, point = sys.argv[1:3]
paths = home_at(Path(home))
if point == "mid_training":  # killed at the third backward pass
    real_backward, passes = torch.Tensor.backward, []

    def backward(self, *args, **kwargs):
        passes.append(1)
        if len(passes) == 3:
            die()
        return real_backward(self, *args, **kwargs)

    torch.Tensor.backward = backward
if point == "mid_save":
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.flush()  # the bytes are on disk in the temporary file; the rename has not happened
        die()

    torch.save = save
policy.train_next(paths, "two_tower", replace(TINY, epochs=2), holdout_days=0)
print("not killed")
"""


@pytest.fixture
def trained(make_home) -> tuple[Paths, Checkpoint, str]:
    """A home whose two-tower 0001 (days 0-1) serves; day 2 landed since."""
    paths = make_home("crash-training")
    planted.write_days(paths.table("training_examples"), range(2))
    first = policy.train_next(paths, "two_tower", replace(TINY, epochs=2), holdout_days=0)
    policy.write_policy(paths, {"policy": "model", "two_tower": first.path, "ranking": None})
    planted.write_days(paths.table("training_examples"), [2])
    return paths, first.checkpoint, Path(policy.pointer_path(paths)).read_text()


def state_dicts_equal(a: Checkpoint, b: Checkpoint) -> bool:
    import torch

    return a.state_dict.keys() == b.state_dict.keys() and all(
        torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict
    )


@pytest.mark.parametrize("point", ["mid_training", "mid_save"])
def test_a_killed_training_leaves_the_served_model_and_the_next_run_saves(trained, point):
    paths, served, pointer = trained
    run_child(TRAINING_CHILD, paths.home, point)
    # What serves is untouched and loads as it was.
    assert Path(policy.pointer_path(paths)).read_text() == pointer
    versions = policy.checkpoint_versions(paths, "two_tower")
    assert [p.name for p in versions] == ["0001.pt"]  # no partial 0002 where versions are read
    assert state_dicts_equal(Checkpoint.load(versions[0]), served)
    # A temporary file may remain (the process died before removing it): never a version.
    leftovers = [p.name for p in versions[0].parent.iterdir() if p.name.startswith(".")]
    assert all(".tmp-" in name for name in leftovers), leftovers
    # The retry trains the day the crash did not, into the next version.
    retry = policy.train_next(paths, "two_tower", replace(TINY, epochs=2), holdout_days=0)
    assert retry.new_version and Path(retry.path).name == "0002.pt"
    assert Checkpoint.load(retry.path).partitions == [planted.day(i) for i in range(3)]


def test_a_state_dict_comparison_tells_two_trainings_apart(trained):
    # the failing case of state_dicts_equal above
    paths, served, _ = trained
    other = policy.train_next(paths, "two_tower", replace(TINY, epochs=2), holdout_days=0)
    assert not state_dicts_equal(Checkpoint.load(other.path), served)


# --- the bento build ----------------------------------------------------------------------


BENTO_CHILD = """
from recassets.bento import bundle as B
from tests.conftest import home_at
from tests.unit.test_crash_recovery import CRASHED

home, = sys.argv[1:2]
paths = home_at(Path(home))
store = Path(B.bentoml_home(paths))
# killed as soon as bentoml build has copied bento.yaml into the new bento's folder (the rest
# of the copy may or may not be done: the build did not return)
die_when_new(store / "bentos" / B.BENTO_NAME / CRASHED, "bento.yaml")
with B.staged_bundle(paths) as folder:
    B.build_bento(paths, folder, version=CRASHED)
print("not killed")
"""


CRASHED = "20260101t000001-crashed"  # sorts after the good bento: newer, if it were taken


def bento_complete(paths: Paths, tag: str) -> bool:
    folder = B.bento_folder(paths, tag)
    return (folder / "bento.yaml").exists() and (folder / "src" / "service.py").exists()


def test_a_killed_bento_build_leaves_the_previous_bento_latest(make_home):
    paths = make_home("crash-bento")
    with B.staged_bundle(paths) as folder:
        good = B.build_bento(paths, folder, version="20260101t000000-good")
    assert B.latest_bento(paths) == good and bento_complete(paths, good)
    run_child(BENTO_CHILD, paths.home)
    # the killed build left its folder with a bento.yaml (what the store's scan took for a
    # bento before builds were marked) and newer by version: never taken
    assert (B.bento_folder(paths, f"{B.BENTO_NAME}:{CRASHED}") / "bento.yaml").exists()
    assert B.latest_bento(paths) == good
    assert bento_complete(paths, good)
    with B.staged_bundle(paths) as folder:
        after = B.build_bento(paths, folder, version="20260101t000002-later")
    assert B.latest_bento(paths) == after and bento_complete(paths, after)


def test_a_store_from_before_build_marks_is_read_as_before(make_home):
    # bentos built before builds were marked: every complete-looking bento counts (else an
    # existing home would have nothing to serve); once one build is marked, marks decide
    paths = make_home("crash-legacy-store")
    for version in ("20250101t000000-old", "20250102t000000-newer"):
        folder = B.bento_folder(paths, f"{B.BENTO_NAME}:{version}")
        folder.mkdir(parents=True)
        (folder / "bento.yaml").write_text("name: x\n")
    assert B.latest_bento(paths) == f"{B.BENTO_NAME}:20250102t000000-newer"
    B.mark_built(paths, f"{B.BENTO_NAME}:20250101t000000-old")
    assert B.latest_bento(paths) == f"{B.BENTO_NAME}:20250101t000000-old"
