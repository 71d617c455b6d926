from __future__ import annotations

import os

import pytest
import torch

from recassets.training.checkpoint import CHECKPOINT_FORMAT, Checkpoint, as_checkpoint


def _checkpoint() -> Checkpoint:
    return Checkpoint(
        kind="ranking",
        config={"model": {"dim": 2}, "train": {"lr": 1e-3}, "vocab": {}},
        state_dict={"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        optimizer={"dense": {"state": {}}, "embedding": {}},
        vocab={"item_id": {"keys": torch.tensor([7, 3])}},
        source={
            "table": "/lake/training_examples",
            "partitions": {
                "2026-01-02": {"version": 4, "rows": 10},
                "2026-01-01": {"version": 2, "rows": 9},
            },
        },
        runs=[{"partitions": ["2026-01-01", "2026-01-02"], "loss": 0.5}],
        metrics={"loss": 0.5},
        created_at="2026-01-03T00:00:00+00:00",
    )


def test_save_is_atomic_and_loads_without_unpickling_code(tmp_path):
    ckpt = _checkpoint()
    path = ckpt.save(tmp_path / "0001.pt")
    assert path == str(tmp_path / "0001.pt") and ckpt.path == path
    assert os.listdir(tmp_path) == ["0001.pt"]  # no temporary file left behind
    raw = torch.load(path, weights_only=True)
    assert list(raw) == [
        "format", "kind", "code_version", "created_at", "config", "state_dict", "optimizer",
        "vocab", "source", "runs", "metrics",
    ]  # fmt: skip
    assert raw["format"] == CHECKPOINT_FORMAT and raw["kind"] == "ranking"
    loaded = Checkpoint.load(path)
    assert loaded.path == path and loaded.runs == ckpt.runs and loaded.config == ckpt.config
    assert torch.equal(loaded.state_dict["w"], ckpt.state_dict["w"])


def test_partitions_are_sorted_with_their_delta_versions():
    ckpt = _checkpoint()
    assert ckpt.partitions == ["2026-01-01", "2026-01-02"]
    assert ckpt.versions == {"2026-01-02": 4, "2026-01-01": 2}


def test_as_checkpoint_takes_a_checkpoint_its_dict_or_a_path(tmp_path):
    ckpt = _checkpoint()
    assert as_checkpoint(ckpt) is ckpt
    assert as_checkpoint(ckpt.to_dict()).source == ckpt.source
    ckpt.save(tmp_path / "c.pt")
    assert as_checkpoint(tmp_path / "c.pt").path == str(tmp_path / "c.pt")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown checkpoint format 2"):
        Checkpoint.from_dict({**_checkpoint().to_dict(), "format": 2})


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated (a copy cut short, a full disk)
        lambda b: b[:100] + bytes(len(b) - 100),  # zeroed from byte 100 on
        lambda b: torch_bytes([1, 2, 3]),  # a valid torch file that is not a checkpoint
        # 8 bytes changed inside the weights, the zip intact: torch.load read it, and the
        # changed model served, until the CRCs were checked
        lambda b: flipped(b, b.index(torch.arange(6, dtype=torch.float32).numpy().tobytes())),
    ],
    ids=["truncated", "corrupt", "not-a-checkpoint", "changed-weights"],
)
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    from recassets.training.checkpoint import DamagedArtifactError

    good = _checkpoint().save(tmp_path / "0001.pt")
    assert Checkpoint.load(good).kind == "ranking"  # the undamaged file loads
    bad = tmp_path / "0002.pt"
    bad.write_bytes(damage((tmp_path / "0001.pt").read_bytes()))
    with pytest.raises(DamagedArtifactError, match=r"checkpoint .*0002\.pt is damaged"):
        Checkpoint.load(bad)
    with pytest.raises(FileNotFoundError):  # a missing file stays a missing file
        Checkpoint.load(tmp_path / "0003.pt")


def torch_bytes(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def flipped(data: bytes, at: int) -> bytes:
    """``data`` with the 8 bytes from offset ``at`` inverted (put it inside a member's data:
    the zip's own padding and headers are not what a CRC covers)."""
    return data[:at] + bytes(x ^ 0xFF for x in data[at : at + 8]) + data[at + 8 :]
