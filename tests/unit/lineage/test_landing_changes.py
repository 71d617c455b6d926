"""``landing_changes``: how a day's landing differs from what its last ingestion read, judged
from the manifest (names and sizes) and the code version that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

from recassets import __version__
from recassets.ingest.lineage import landing_changes, lineage_path

DAY = "2026-12-01"


def _ingested(paths, files: dict[str, bytes], code_version: str = __version__) -> Path:
    folder = Path(paths.landing_dir("serving_log", DAY))
    folder.mkdir(parents=True)
    inputs = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        inputs.append({"path": str(folder / name), "size": len(data), "sha256": "0" * 64})
    manifest = {"rows": 4, "inputs": inputs, "code_version": code_version}
    target = Path(lineage_path(paths, "serving_log", DAY))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest))
    return folder


def _changes(paths, folder: Path):
    return landing_changes(paths, "serving_log", DAY, str(folder))


def test_a_day_read_from_the_files_it_holds_is_unchanged(paths):
    folder = _ingested(paths, {"a.jsonl": b"{}\n{}\n", "b.jsonl": b"{}\n{}\n"})
    assert _changes(paths, folder) == ([], [], True, 4)
    (folder / ".a.jsonl.tmp").write_bytes(b"half")  # a writer's temporary file: not read
    assert _changes(paths, folder).unchanged


def test_a_grown_new_or_lost_file_or_another_code_version_is_a_change(paths):
    folder = _ingested(paths, {"a.jsonl": b"{}\n", "b.jsonl": b"{}\n"})
    (folder / "a.jsonl").write_bytes(b"{}\n{}\n")  # grew
    assert _changes(paths, folder) == ([], [], False, 4)
    (folder / "c.jsonl").write_bytes(b"{}\n")
    assert _changes(paths, folder) == ([], ["c.jsonl"], False, 4)
    (folder / "b.jsonl").unlink()
    assert _changes(paths, folder) == (["b.jsonl"], ["c.jsonl"], False, 4)


def test_the_rules_of_another_version_read_the_day_again(paths):
    folder = _ingested(paths, {"a.jsonl": b"{}\n"}, code_version="0.0.1")
    assert not _changes(paths, folder).unchanged


def test_a_day_never_ingested_is_neither_unchanged_nor_lost(paths):
    folder = Path(paths.landing_dir("serving_log", DAY))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(b"{}\n")
    assert _changes(paths, folder) == ([], [], False, 0)
