"""What a damaged home does to ``lineage`` and ``audit`` (review of 2026-12-06, each on a demo
home): a Delta commit that a model recorded removed from the log, a recorded path that cannot
be opened, file names holding control or bidi characters, targets in other scripts' digits and
``--out`` names no file system takes. Each is said on its node or refused up front; none stops
the trace, and the audit's page is still written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recassets.lineage import audit_html, render
from recassets.lineage import graph as G
from recassets.paths import Paths
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint
from tests.conftest import run_cli

from . import home as H

EXAMPLES_LOG = "lake/training_examples/_delta_log"


def _log_file(paths: Paths, table: str, version: int, suffix: str = ".json") -> Path:
    return Path(paths.table(table)) / "_delta_log" / f"{version:020d}{suffix}"


def _examples_commit(paths: Paths) -> None:
    """training_examples@1: DAYS[1] written again, as a re-run of the examples does."""
    day = H.DAYS[1]
    H._commit(paths.table("training_examples"), [day],
              {"run_id": "again", "day": day, "recipe": "impressions", "features_day": H.DAYS[0]})  # fmt: skip


def _manifest(paths: Paths, table: str, day: str) -> tuple[Path, dict]:
    path = Path(paths.lineage) / table / f"dt={day}.json"
    return path, json.loads(path.read_text())


def test_a_recorded_version_removed_from_the_log_fails_verify_naming_it(
    paths, tmp_path, monkeypatch, capsys
):
    """A model read DAYS[1] at training_examples@1, whose commit file (and .crc) was deleted
    since: its day read as "(no commit)", "not recorded", and --verify said ok (exit 0). It is
    DAMAGED on the table's log, naming the version; DAYS[0], read at version 0, is traced on."""
    home = H.build(paths)
    _examples_commit(home)
    first = P.checkpoint_versions(home, "two_tower")[0]
    ckpt = Checkpoint.load(first)
    ckpt.source["partitions"] = {H.DAYS[0]: {"version": 0, "rows": 1},
                                 H.DAYS[1]: {"version": 1, "rows": 1}}  # fmt: skip
    ckpt.save(first)
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "two_tower/0001", "--verify")
    assert code == 0 and f"training_examples@1 dt={H.DAYS[1]}" in out, (code, out)
    _log_file(home, "training_examples", 1).unlink()
    _log_file(home, "training_examples", 1, ".crc").unlink(missing_ok=True)
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "two_tower/0001", "--verify")
    assert isinstance(code, str) and "(1 damaged records)" in code and EXAMPLES_LOG in code
    assert "version 1, which a record names, is not in" in out
    assert "(removed, or never written: it holds versions 0 to 0)" in out
    assert f"training_examples@0 dt={H.DAYS[0]}" in out  # the other day, traced to its files
    assert f"landing/events/dt={H.DAYS[0]}/part-00000.jsonl" in out
    page = tmp_path / "r.html"
    code, said, _ = run_cli(
        home, monkeypatch, capsys, "audit", "two_tower/0001", "--out", str(page)
    )
    assert isinstance(code, str) and EXAMPLES_LOG in code and f"written to {page}" in said
    assert '<td class="damaged">damaged</td>' in page.read_text()


def test_a_log_delta_rs_cannot_read_is_damaged_on_its_nodes_and_the_rest_is_traced(
    paths, tmp_path, monkeypatch, capsys
):
    """training_examples@1's commit file deleted, its .crc left: delta-rs refuses the table
    ("CRC file version 1 is newer than log segment version 0"), and lineage and audit stopped
    with "cannot be read", no page. Its nodes are DAMAGED, the feature store's branch traced."""
    home = H.build(paths)
    _examples_commit(home)
    _log_file(home, "training_examples", 1).unlink()
    _log_file(home, "training_examples", 1, ".crc").write_text(
        json.dumps({"tableSizeBytes": 0, "numFiles": 0, "numMetadata": 1, "numProtocol": 1}) + "\n"
    )
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "damaged records" in code and EXAMPLES_LOG in code, code
    assert (
        "cannot be read" in out and f"training_examples@0 dt={H.DAYS[0]} (Delta log damaged)" in out
    )
    # the rest: the feature store's branch to the ingest tables, and their landing files
    assert (
        "verify: 1 damaged, 16 ok" in out and "landing/users/dt=2026-01-02/part-00000.jsonl" in out
    )
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "two_tower/0001")
    assert code == 0 and "(Delta log damaged)" in out
    page = tmp_path / "r.html"
    code, said, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(page))
    assert isinstance(code, str) and EXAMPLES_LOG in code and f"written to {page}" in said
    assert "VERIFY FAILED" in page.read_text()


def test_a_middle_commit_removed_from_an_ingest_log_damages_its_nodes_only(
    paths, monkeypatch, capsys
):
    """raw_events@1's commit file deleted between @0 and @2: delta-rs reads no version past the
    gap, and the trace stopped. raw_events' nodes are DAMAGED; users and items are traced."""
    home = H.build(paths, read=True)
    for run in ("r1", "r2"):
        H._commit(home.table("raw_events"), ["2026-01-05"], {"run_id": run, "days": ["2026-01-05"]})
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0, code
    _log_file(home, "raw_events", 1).unlink()
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "lake/raw_events/_delta_log" in code, code
    assert "(Delta log damaged)" in out and "landing/events/" not in out
    assert "landing/users/dt=2026-01-01/part-00000.jsonl" in out  # the other tables traced


def test_the_failure_line_escapes_control_characters_in_file_names(
    own_home, tmp_path, monkeypatch, capsys
):
    """The tree escaped them, the last line did not: "esc^[[2J.jsonl" cleared the terminal and
    "new<newline>line.jsonl" broke the line, in ``lineage --verify`` and ``audit`` alike."""
    path, m = _manifest(own_home, "raw_events", H.DAYS[1])
    folder = Path(own_home.landing_dir("events", H.DAYS[1]))
    for name in ("esc\x1b[2J.jsonl", "new\nline.jsonl", "x\u202egpj.jsonl"):
        (folder / name).write_text("{}\n")
        m["inputs"].append({"path": str(folder / name), "sha256": "0" * 64, "size": 3})
    path.write_text(json.dumps(m))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "3 file(s) fail (3 changed)" in code
    assert not {"\x1b", "\n", "\u202e"} & set(code)
    assert "\x1b" not in out and "\u202e" not in out and "new\nline" not in out
    assert "esc\\x1b[2J.jsonl" in code and "new\\x0aline.jsonl" in code and "x\\u202egpj" in code
    page = tmp_path / "r.html"
    code, _, _ = run_cli(own_home, monkeypatch, capsys, "audit", "latest", "--out", str(page))
    assert isinstance(code, str) and "esc\\x1b[2J.jsonl" in code and "\x1b" not in code
    text = page.read_text()
    assert "\x1b" not in text and "\u202e" not in text and "x\\u202egpj.jsonl" in text


def test_bidi_and_control_characters_are_escaped_and_other_text_kept():
    """U+202E and its kin reordered the names a terminal or a browser showed; the page kept
    ESC and the C1 controls as they were."""
    hostile = "a\u202eb\u2066c\u2069\u200f\u200e\u061c\u2028\x1b\x85\x07 é 日本"
    said = "a\\u202eb\\u2066c\\u2069\\u200f\\u200e\\u061c\\u2028\\x1b\\x85\\x07 é 日本"
    assert render.printable(hostile) == said
    assert audit_html._e(hostile + "<b>") == said + "&lt;b&gt;"


def test_a_recorded_path_that_cannot_be_opened_is_missing_naming_the_os_error(
    own_home, tmp_path, monkeypatch, capsys
):
    """A manifest input recorded as ``.../part-00000.jsonl/``: ``Path`` reads it as the file,
    ``open`` fails with "Not a directory", and lineage and audit stopped with that alone."""
    path, m = _manifest(own_home, "users", H.DAYS[0])
    m["inputs"][0]["path"] += "/"
    path.write_text(json.dumps(m))
    shown = f"landing/users/dt={H.DAYS[0]}/part-00000.jsonl"  # the OS error names the slash
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and f"(1 missing): {shown}" in code, code
    assert f"verify: MISSING {shown} (landing file; it cannot be read: [Errno 20] Not a directory: '{own_home.home}/{shown}/'" in out  # fmt: skip
    page = tmp_path / "r.html"
    code, said, _ = run_cli(own_home, monkeypatch, capsys, "audit", "latest", "--out", str(page))
    assert isinstance(code, str) and f"written to {page}" in said and "Not a directory" in page.read_text()  # fmt: skip


def test_a_path_with_dots_is_this_homes_while_it_stays_inside_and_outside_else(
    own_home, monkeypatch, capsys
):
    """docs/ingestion-and-lineage.md: a path that resolves into this home's folders is this
    home's file whatever its spelling (RECASSETS_HOME=../home gives every record a ``..``);
    one whose ``..`` climbs out of the home is OUTSIDE."""
    path, m = _manifest(own_home, "users", H.DAYS[0])
    recorded = m["inputs"][0]["path"]
    m["inputs"][0]["path"] = recorded.replace("/landing/", "/artifacts/../landing/")
    path.write_text(json.dumps(m))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0 and "verify: 16 ok" in out
    m["inputs"][0]["path"] = recorded.replace("/landing/", "/landing/../../elsewhere/")
    path.write_text(json.dumps(m))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "(1 outside this home)" in code and "verify: OUTSIDE" in out


@pytest.mark.parametrize("text", ["raw_events@\u0661", "two_tower/\u0660\u0660\u0660\u0661"])
def test_digits_of_other_scripts_are_no_version(home_built, monkeypatch, capsys, text):
    """``\\d`` and ``int()`` read Arabic-Indic digits: ``raw_events@<1>`` was version 1."""
    with pytest.raises(G.TargetError, match="ASCII only"):
        G.parse_target(text)
    code, _, err = run_cli(home_built, monkeypatch, capsys, "lineage", text)
    assert code == 2 and "not a lineage target" in err
    from recassets.training.reproduce import model_file

    with pytest.raises(ValueError, match="is not a model version"):
        model_file(home_built, text)


@pytest.fixture(scope="module")
def home_built(make_home) -> Paths:
    return H.build(make_home("damage"))


@pytest.fixture
def own_home(paths) -> Paths:
    return H.build(paths)


@pytest.mark.parametrize(
    "name, says",
    [
        ("a" * 300 + ".html", "its file name is 305 bytes, more than the"),
        ("r.html/", "a folder's name (it ends in a slash)"),
    ],
    ids=["long", "slash"],
)
def test_an_out_no_file_system_takes_is_refused_before_any_work(
    paths, tmp_path, monkeypatch, capsys, name, says
):
    """A 300-byte name failed with "File name too long" only after the audit's work, and
    ``r.html/`` wrote ``r.html``. The home is empty: work done first would fail on it."""
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, _ = run_cli(paths, monkeypatch, capsys, "audit", "latest", "--out", f"{folder}/{name}")
    assert isinstance(code, str) and says in code and "no bento" not in code
    assert list(folder.iterdir()) == []


def test_a_checkpoint_that_cannot_be_read_is_damaged_and_the_page_written(
    own_home, tmp_path, monkeypatch, capsys
):
    """``lineage ranking/0001`` on a cut-short checkpoint stopped with its load error, and the
    audit wrote no page: the model is DAMAGED, named."""
    path = P.checkpoint_versions(own_home, "ranking")[0]
    path.write_bytes(path.read_bytes()[:100])
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "ranking/0001", "--verify")
    assert isinstance(code, str) and "(1 damaged records): artifacts/models/ranking/0001.pt" in code
    assert "verify: DAMAGED artifacts/models/ranking/0001.pt (the checkpoint of model ranking/0001" in out  # fmt: skip
    page = tmp_path / "r.html"
    code, said, _ = run_cli(
        own_home, monkeypatch, capsys, "audit", "ranking/0001", "--out", str(page)
    )
    assert isinstance(code, str) and f"written to {page}" in said


def test_runs_of_days_are_grouped_by_ascii_dates_only():
    """The tree's grouping of consecutive days read ``\\d``: a commit's day in other digits, or
    one that is no date (``2026-13-45``), stopped the tree with a ValueError."""
    from recassets.lineage.render import _ranges

    days = [f"t@0 dt=2026-01-0{d}" for d in (1, 2, 3)]
    odd = ["t@0 dt=2026-13-45", "t@0 dt=\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661"]
    assert _ranges(days + odd) == ["t@0 dt=2026-01-01..2026-01-03 (3 days)", *odd]
