"""``recassets.training.reproduce``: a checkpoint grown over two runs (from scratch, then a warm
start on a later day) is rebuilt bit for bit on the CPU from the Delta versions it records,
even after the table changed under it (a day replaced, as a re-ingestion does); and a
difference (a weight changed in the file, a run read at another version) is reported, naming
what differs."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import write_deltalake

from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import train_ranking, train_two_tower
from recassets.training.reproduce import config_of, reproduce
from support import planted

from .tiny import DAYS, TINY

CONFIG = replace(TINY, epochs=2, device="cpu")


def _replace_day(path: str, i: int, seed: int) -> None:
    """Overwrite day i's partition with other rows (a re-ingestion of that day)."""
    rows = planted.make_day(i, seed=seed)
    day = pa.scalar(dt.date.fromisoformat(planted.day(i)), pa.date32())
    assert pc.all(pc.equal(rows["dt"], day)).as_py()
    write_deltalake(path, rows, mode="overwrite", predicate=f"dt = '{planted.day(i)}'")


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """Two-tower and ranker: days 0-1 from scratch, day 2 warm-started; then day 0 replaced
    and day 3 appended, so that the latest table differs from what each run read."""
    root = tmp_path_factory.mktemp("reproduce")
    table = str(root / "training_examples")
    planted.write_days(table, range(2))
    out = {}
    for kind, fit in (("two_tower", train_two_tower), ("ranking", train_ranking)):
        first = fit(table, DAYS[:2], CONFIG)
        if kind == "two_tower":
            planted.write_days(table, [2])
        second = fit(table, DAYS[:3], CONFIG, checkpoint=first, output=root / f"{kind}.pt")
        out[kind] = str(root / f"{kind}.pt")
        assert [r["warm_start"] for r in second.runs] == [False, True]
    _replace_day(table, 0, seed=99)
    planted.write_days(table, [3])
    return table, out


@pytest.mark.parametrize("kind", ["two_tower", "ranking"])
def test_a_checkpoint_is_rebuilt_bit_for_bit_from_its_recorded_versions(grown, kind):
    _, files = grown
    result = reproduce(files[kind])
    assert result.identical, result.describe()
    assert result.checked > 0 and "identical" in result.describe()
    assert [r["warm_start"] for r in result.runs] == [False, True]


@pytest.mark.integration
def test_a_model_trained_over_two_ranks_is_replayed_over_two_ranks(tmp_path):
    # replayed by the single-process loop, the 2-rank model came out "different" (half the
    # steps, twice the rows a step) and `recassets reproduce` exited 1
    from recassets.training.distributed import train_distributed

    table = str(tmp_path / "training_examples")
    planted.write_days(table, range(1))
    two = train_distributed("two_tower", table, DAYS[:1], replace(CONFIG, epochs=1), processes=2,
                            output=tmp_path / "two.pt", timeout_s=600)  # fmt: skip
    assert two.runs[-1]["processes"] == 2
    result = reproduce(tmp_path / "two.pt")
    assert result.identical, result.describe()


def test_a_sharded_run_without_its_plan_is_refused_before_training(grown, tmp_path, monkeypatch):
    from recassets.training import reproduce as R

    _, files = grown
    ckpt = Checkpoint.load(files["two_tower"])
    ckpt.runs[1] = {**ckpt.runs[1], "processes": 2}  # and no "sharding"
    ckpt.save(tmp_path / "planless.pt")
    monkeypatch.setattr(R, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="run 2 was trained over 2 ranks but records no sharding"):
        reproduce(tmp_path / "planless.pt")


def test_the_recorded_config_is_the_training_config(grown):
    _, files = grown
    config = config_of(Checkpoint.load(files["two_tower"]))
    assert (config.two_tower.dim, config.two_tower.temperature) == (16, 0.1)
    assert (config.batch_size, config.lr, config.seed) == (CONFIG.batch_size, CONFIG.lr, 0)


def test_a_changed_weight_is_reported_by_name(grown, tmp_path):
    _, files = grown
    ckpt = Checkpoint.load(files["ranking"])
    name = next(iter(ckpt.state_dict))
    ckpt.state_dict[name] = ckpt.state_dict[name].clone()
    ckpt.state_dict[name].view(-1)[0] += 0.5
    ckpt.save(tmp_path / "tampered.pt")
    result = reproduce(tmp_path / "tampered.pt")
    assert not result.identical
    assert any(d.startswith(f"tensor {name}: max |difference| 0.5") for d in result.differences)


def test_a_run_read_at_another_version_is_not_the_same_model(grown, tmp_path):
    # the record says the first run read the table after day 0 was replaced: replaying it
    # reads other rows, and the comparison says so
    table, files = grown
    ckpt = Checkpoint.load(files["two_tower"])
    latest = max(r["table_version"] for r in ckpt.runs) + 2  # the version with day 0 replaced
    ckpt.runs[0] = {**ckpt.runs[0], "table_version": latest}
    ckpt.save(tmp_path / "misrecorded.pt")
    result = reproduce(tmp_path / "misrecorded.pt", table)
    assert not result.identical
    assert any(d.startswith("tensor ") for d in result.differences), result.differences


def test_the_cli_reproduces_a_model_version_and_fails_on_a_difference(
    make_home, monkeypatch, capsys
):
    from recassets import cli
    from recassets.training import policy

    paths = make_home("reproduce-cli")
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    planted.write_days(paths.table("training_examples"), range(2))
    policy.train_next(paths, "two_tower", CONFIG, holdout_days=0)
    cli.main(["reproduce", "two_tower/0001"])
    assert "two_tower/0001.pt: replayed 1 run(s) from the recorded Delta versions (1): identical" in capsys.readouterr().out  # fmt: skip
    # a weight changed in the file: listed, exit 1
    ckpt = Checkpoint.load(policy.latest_checkpoint(paths, "two_tower"))
    name = next(iter(ckpt.state_dict))
    ckpt.state_dict[name] = ckpt.state_dict[name] + 1.0
    ckpt.save(policy.models_dir(paths) / "two_tower" / "0002.pt")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reproduce", "two_tower/0002"])
    assert exit_.value.code == 1 and f"tensor {name}: max |difference| 1" in capsys.readouterr().out
    # what is not a model version is refused before any path is made of it
    for bad in ("../../etc/passwd", "two_tower/0009", "raw_events@3", "item_similarity/0001"):
        with pytest.raises(SystemExit, match="recassets reproduce: ") as said:
            cli.main(["reproduce", bad])
        assert "TABLE@VERSION" not in str(said.value)  # one line on model versions, not lineage's
        assert bad == "two_tower/0009" or "is not a model version" in str(said.value)


def test_a_deleted_checkpoint_is_reproduced_from_the_bentos_copy_that_holds_its_bytes(
    make_home, monkeypatch, capsys
):
    """Old checkpoints are what a retention job deletes first, while the bento that serves
    the model keeps a copy: ``reproduce two_tower/0001`` replays against that copy when its
    bytes are the ones the bundle's lineage records for that checkpoint. A copy whose bytes
    differ, one anywhere but where a build puts it, or one in a bento whose record was edited
    after its build (its digest fails) is no copy: the version is missing."""
    import hashlib
    import json
    import shutil

    from recassets import cli
    from recassets.bento.bundle import lineage_digest
    from recassets.bento.store import BENTO_NAME, bentoml_home
    from recassets.training import policy

    paths = make_home("reproduce-copy")
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    planted.write_days(paths.table("training_examples"), range(2))
    policy.train_next(paths, "two_tower", CONFIG, holdout_days=0)
    own = policy.models_dir(paths) / "two_tower" / "0001.pt"
    section = {"checkpoint": "/elsewhere/artifacts/models/two_tower/0001.pt",
               "sha256": hashlib.sha256(own.read_bytes()).hexdigest()}  # fmt: skip
    lineage = {"two_tower": section, "policy": {"policy": "model"}}
    digest = lineage_digest(lineage)
    bento = Path(bentoml_home(paths), "bentos", BENTO_NAME, f"20260101t000000-model-{digest}")
    bundle = bento / "src" / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bento / "bento.yaml").write_text("name: recassets_recommender\n")
    copy = Path(shutil.copy2(own, bundle / "models" / "two_tower.pt"))
    manifest = {"lineage": lineage, "policy": {"policy": "model"}, "digest": digest,
                "files": {"two_tower": "models/two_tower.pt"}}  # fmt: skip
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    own.unlink()
    cli.main(["reproduce", "two_tower/0001"])
    out = capsys.readouterr()
    assert f"({copy})" in out.out and "replayed 1 run(s)" in out.out and "identical" in out.out
    nested = bundle / "nest" / "two_tower.pt"  # a copy anywhere but where a build puts it
    nested.parent.mkdir()
    shutil.copy2(copy, nested)
    edited = {**section, "recall@50": 0.99}  # a record edited after the build
    for forged in (
        {**manifest, "files": {"two_tower": "nest/two_tower.pt"}},
        {**manifest, "lineage": {**lineage, "two_tower": edited}},
        None,  # the copy's bytes changed
    ):
        (bundle / "manifest.json").write_text(json.dumps(forged or manifest))
        if forged is None:
            copy.write_bytes(copy.read_bytes() + b"x")
        with pytest.raises(SystemExit, match="no bento holds a copy of it"):
            cli.main(["reproduce", "two_tower/0001"])


def test_a_version_vacuumed_or_cleaned_from_the_log_is_named_before_any_training(grown, tmp_path):
    """After retention ran, time travel failed deep in a reader: a Parquet file "not found",
    or "No files in log segment", naming neither the version nor why (probe, 2026-12-06)."""
    import os
    import shutil

    from deltalake import DeltaTable

    from recassets.lake import version_gone

    table, files = grown
    first = Checkpoint.load(files["two_tower"]).runs[0]
    version, days = int(first["table_version"]), first["partitions"]
    assert version_gone(table, version, days) is None  # the grown table keeps every version

    vacuumed = str(tmp_path / "vacuumed")
    shutil.copytree(table, vacuumed)
    DeltaTable(vacuumed).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    why = version_gone(vacuumed, version, days)  # day 0 was replaced since: its old files gone
    assert why is not None and why.startswith(f"1 data file(s) of version {version} are gone")
    assert version_gone(vacuumed, version, [days[1]]) is None  # day 1's files are still there
    with pytest.raises(ValueError, match=f"run 1 of 2 read it at version {version}, and 1 data"):
        reproduce(files["two_tower"], vacuumed)

    cleaned = str(tmp_path / "cleaned")
    shutil.copytree(table, cleaned)
    latest = DeltaTable(cleaned)
    latest.create_checkpoint()
    log = os.path.join(cleaned, "_delta_log")
    for v in range(latest.version()):
        os.remove(os.path.join(log, f"{v:020d}.json"))
    why = version_gone(cleaned, version, days)
    assert why is not None and why.startswith(
        f"version {version} is no longer in the table's log (its log now starts at version "
        f"{latest.version()}"
    )
    with pytest.raises(ValueError, match="is no longer in the table's log"):
        reproduce(files["two_tower"], cleaned)


def test_a_recorded_version_whose_commit_file_was_removed_is_said_not_in_the_log(grown, tmp_path):
    """The commit files from the second run's version on deleted: "version N was never
    written (the table's latest is N-1)", of a version the checkpoint records reading."""
    import os
    import shutil

    table, files = grown
    version = int(Checkpoint.load(files["two_tower"]).runs[1]["table_version"])
    cut = str(tmp_path / "cut")
    shutil.copytree(table, cut)
    log = Path(cut) / "_delta_log"
    for name in os.listdir(log):
        if name.endswith(".json") and int(name[:20]) >= version:
            os.remove(log / name)
    with pytest.raises(ValueError, match="run 2 of 2 read it at version") as said:
        reproduce(files["two_tower"], cut)
    assert (
        f"version {version} is not in its Delta log {log} (removed, or never written: it "
        f"holds versions 0 to {version - 1})" in str(said.value)
    )
    assert "was never written (the table's latest" not in str(said.value)
