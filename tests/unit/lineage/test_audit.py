"""``recassets audit``: one self-contained HTML page on the lineage test home (``home.build``)
with a second two-tower version, two evaluation records and a quarantine table added. The page
parses, fetches nothing, names what is served, each model version with its baselines and plot,
the partitions, the checks, the runs and the verify result; a changed landing file makes it say
so and exit 1; hostile values arrive escaped; a bad target is a usage error that writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from recassets.lineage import audit as A
from recassets.lineage import graph as G
from recassets.lineage.audit_html import svg_plot
from recassets.paths import Paths
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint
from tests.conftest import run_cli

from . import home as H

HOSTILE = '<script>alert("x")</script>'


def _metrics(recall: float) -> dict[str, float]:
    return {"recall@50": recall, "ndcg@10": recall / 2, "ndcg@50": recall / 3,
            "hit_rate@50": recall + 0.1, "users": 40}  # fmt: skip


def _evaluation(candidate: str, current: str | None, recall: float) -> dict:
    """An ``EvaluationReport.to_dict()`` as the evaluation writes it."""
    return {
        "k": 50, "ndcg_at": 10, "train_days": [H.DAYS[0]], "eval_days": [H.DAYS[1]],
        "catalog_size": 2, "candidates": 200, "gate_baselines": None, "ranking": {},
        "reranking": {},
        "checkpoints": {"candidate_two_tower": candidate, "candidate_ranking": None,
                        "current_two_tower": current, "current_ranking": None},
        "retrieval": {"candidate": _metrics(recall), "popularity_all_time": _metrics(0.1234),
                      "popularity_trailing_7d": _metrics(0.1357), "cooccurrence": _metrics(0.1471),
                      **({"current": _metrics(recall - 0.05)} if current else {})},
    }  # fmt: skip


def build(paths: Paths) -> Paths:
    """The lineage home, plus: two_tower/0002 (not served), the promoted evaluation of 0001 in
    current.json, evaluation/latest.json scoring 0002 against 0001, and a quarantine table
    whose reason is hostile."""
    H.build(paths)
    first = str(P.checkpoint_versions(paths, "two_tower")[0])
    ckpt = Checkpoint.load(first)
    ckpt.metrics, ckpt.created_at = {"loss": 0.25}, "2026-01-04T00:00:00+00:00"
    second = P.save_new_version(paths, "two_tower", ckpt)
    current = P.current_policy(paths)
    P.write_policy(paths, {**current, "evaluation": _evaluation(first, None, 0.4321),
                           "promoted_at": "2026-01-03T00:00:01+00:00"})  # fmt: skip
    P.evaluation_path(paths).parent.mkdir(parents=True, exist_ok=True)
    P.evaluation_path(paths).write_text(json.dumps(_evaluation(second, first, 0.4444)))
    day = dt.date.fromisoformat(H.DAYS[0])
    quarantine = pa.table({
        "dataset": ["events", "events", "users"], "source_file": ["f", "f", "g"],
        "line": pa.array([3, 4, 1], pa.int64()), "raw": ["{", "{", "{"],
        "reason": [HOSTILE, HOSTILE, "missing field"], "field": [None, None, "user_id"],
        "run_id": [H.RUN] * 3, "quarantined_at": [dt.datetime(2026, 1, 3, tzinfo=dt.UTC)] * 3,
        "dt": [day] * 3,
    })  # fmt: skip
    write_deltalake(paths.table("quarantine"), quarantine, partition_by=["dataset", "dt"])
    return paths


@pytest.fixture(scope="module")
def home(make_home: Callable[[str], Paths]) -> Paths:
    return build(make_home("audit"))


class _Strict(HTMLParser):
    """Collects tags and attributes; fails on what a browser would have to guess at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in ("meta", "br", "hr", "img", "link", "input"):
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()


def _parse(page: str) -> _Strict:
    parser = _Strict()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    return parser


def test_the_report_of_a_bento(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "report.html"
    code, said, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))
    assert code == 0 and f"report written to {out}" in said
    page = out.read_text()
    parsed = _parse(page)
    assert "script" not in parsed.tags and {"svg", "polyline", "table"} <= set(parsed.tags)
    # nothing fetched: no URL anywhere, no src/href at all
    assert not re.search(r"https?://", page)
    assert not [a for a in parsed.attrs if a[0] in ("src", "href", "xlink:href")]
    # what is served and since when
    assert H.TAG in page and "2026-01-03T00:00:01+00:00" in page  # promoted_at
    assert "verify: all 16 files whose sha256 was recorded match" in page
    # the lineage home's bento predates the code record: said in the banner, no failure
    assert "NOT CHECKED: the bento code it serves" in page
    # the served models' cards: two_tower/0001 against the baselines, with figures
    assert "model two_tower/0001" in page and "model ranking/0001" in page
    for name, figure in (("popularity_all_time", "0.1234"), ("popularity_trailing_7d", "0.1357"),
                         ("cooccurrence", "0.1471"), ("candidate", "0.4321")):  # fmt: skip
        assert name in page and figure in page
    assert (
        '<td class="n">0.285</td>' in page
    )  # 0.4321 - 0.1471: the candidate against co-occurrence
    assert "recall@50 by version" in page and "loss by version" in page
    # both two-tower versions in the history, with 0002's own loss and evaluation
    assert ">0002<" in page and "0.25" in page and "0.4444" in page
    # the data: partitions, rows, quarantined rows from the table with their reasons
    assert "training_examples version" in page
    rows = re.findall(r"<tr><td>raw_events</td><td>(.*?)</td>.*?</tr>", page)
    assert rows == list(H.DAYS)
    assert "quarantine@0" in page and "2x &lt;script&gt;" in page
    # checks with their figures, and the chain of runs
    assert "item_index_recall" in page and "recall@100=1" in page
    assert H.RUN in page and "no run recorded" in page
    assert "landing/events/dt=2026-01-02/part-00000.jsonl" in page


def test_a_model_version_is_carded_against_the_previous_one(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "m.html"
    code, _, _ = run_cli(home, monkeypatch, capsys, "audit", "two_tower/0002", "--out", str(out))
    page = out.read_text()
    _parse(page)
    assert code == 0 and "model two_tower/0002" in page
    assert "previous version 0001" in page and "previous model (current then:" in page
    assert "latest.json" in page and "0.4444" in page and "<svg" in page


def test_out_dash_writes_the_page_to_standard_output_and_no_file(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    code, said, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", "-")
    assert code == 0 and said.startswith("<!DOCTYPE html>") and "report written" not in said
    _parse(said)
    assert H.TAG in said and not (tmp_path / "-").exists()
    # a path still gets a file, and standard output only the line saying where
    code, said, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", "r.html")
    assert code == 0 and "<html" not in said and (tmp_path / "r.html").is_file()


def test_a_changed_landing_file_is_said_at_the_top_and_exits_1(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]):  # fmt: skip
    home = build(paths)
    changed = Path(home.landing_dir("events", "2026-01-02")) / "part-00000.jsonl"
    changed.write_text(changed.read_text() + '{"late": "line"}\n')
    out = tmp_path / "r.html"
    code, said, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))
    assert (
        isinstance(code, str)
        and "1 file(s) fail (1 changed)" in code
        and "part-00000.jsonl" in code
    )
    assert f"report written to {out}" in said  # written, and where, before the exit
    page = out.read_text()
    _parse(page)
    top = page[: page.index("<h2>")]
    assert "VERIFY FAILED: 1 file(s) (1 changed)" in top
    assert "landing/events/dt=2026-01-02/part-00000.jsonl" in top
    assert '<td class="changed">changed</td>' in page


def test_hostile_values_arrive_escaped(home: Paths, tmp_path: Path):
    report = A.collect(home, G.parse_target("latest"))
    report.triggers[0].launched_by = HOSTILE  # a run tag written by anyone with the API
    report.served.append(("bento policy", '"><svg onload=alert(1)>'))
    page = A.write(report, tmp_path / "x.html").read_text()
    parsed = _parse(page)
    assert "<script" not in page and "onload" not in {a for a, _ in parsed.attrs}
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;svg onload=alert(1)&gt;" in page


def test_the_plot_scales_and_escapes():
    svg = svg_plot("loss <by> version", [("0001", 0.5), ("0002", 0.25), ("0003", 0.3)])
    assert svg.startswith("<svg") and "loss &lt;by&gt; version" in svg
    points = re.search(r'points="([^"]+)"', svg).group(1).split()  # type: ignore[union-attr]
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[0] == min(ys) and ys[1] == max(ys)  # the highest loss plotted highest
    assert "<polyline" not in svg_plot("one", [("0001", 1.0)])  # a single point, no line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["../../etc/passwd"], "not a lineage target"),
        (["two_tower/../../0001"], "not a lineage target"),
        (["raw_events"], "needs a day"),
    ],
)
def test_a_bad_target_is_a_usage_error_and_writes_nothing(home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                          argv: list[str], message: str):  # fmt: skip
    out = tmp_path / "report.html"
    code, said, err = run_cli(home, monkeypatch, capsys, "audit", *argv, "--out", str(out))
    assert code == 2 and message in err and said == "" and not out.exists()
    code, _, _ = run_cli(home, monkeypatch, capsys, "audit", "two_tower/0009", "--out", str(out))
    assert isinstance(code, str) and "no checkpoint two_tower/0009" in code and not out.exists()


def test_a_request_id_reports_the_answer_and_its_bento(
    paths: Paths,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from .test_request_answer import served_after_build
    from .test_requests import RID, _decision, _land

    home = build(paths)
    served = served_after_build()
    _land(home, _decision(RID, ts=served))  # served after its bento was built
    out = tmp_path / "req.html"
    code, _, _ = run_cli(paths, monkeypatch, capsys, "audit", RID, "--out", str(out))
    page = out.read_text()
    _parse(page)
    assert code == 0 and "<h3>The request</h3>" in page and RID in page
    assert served in page and H.TAG in page  # when, and which bento
    assert "the answer&#x27;s record is not ingested yet" in page  # nothing recorded vouches
    assert "model two_tower/0001" in page


def test_a_cooccurrence_fallback_is_named_where_the_order_is(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    said = "co-occurrence, served while nothing learned passes"
    out = tmp_path / "report.html"
    assert run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))[0] == 0
    assert said not in out.read_text()
    P.write_policy(home, {**P.current_policy(home), "order": "blend", "fallback": "cooccurrence"})
    assert run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))[0] == 0
    assert f"blend: {said}" in out.read_text()  # current.json's order: the next build's


def test_a_lost_dagster_instance_is_said_once_above_the_tree_and_on_the_page(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Without the instance's run storage every node says its run cannot be shown; the page
    had no banner of its own for it, so an auditor read a dozen such lines before knowing why.
    With an instance there (one that knows nothing of these runs), no such note."""
    note = "no Dagster run storage at "
    code, tree, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest")
    assert code in (0, None) and tree.splitlines()[0].startswith(f"note: {note}"), tree
    out = tmp_path / "report.html"
    run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))
    page = out.read_text()
    assert f'<p class="banner note">{note}' in page
    _parse(page)
    storage = Path(home.dagster_home, "history", "runs.db")
    storage.parent.mkdir(parents=True, exist_ok=True)
    storage.touch()
    try:
        code, tree, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest")
        assert not tree.startswith("note:")
        run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))
        assert 'class="banner note"' not in out.read_text()
    finally:
        storage.unlink()


@pytest.mark.parametrize(
    "where, field, value",
    [("latest", "k", '"abc"'), ("latest", "k", "1e400"), ("current", "ndcg_at", "-3")],
)
def test_a_damaged_evaluation_record_is_named_and_the_page_written(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                                   where: str, field: str, value: str):  # fmt: skip
    """``"k": "abc"`` stopped the audit with "invalid literal for int()", ``1e400`` with an
    OverflowError: no page, no file named. The record is a damaged row naming its file and
    field; the page is written without its figures, and the audit exits 1."""
    home = build(paths)
    if where == "latest":
        record, said = P.evaluation_path(home), field
        text = record.read_text()
        record.write_text(re.sub(rf'"{field}": [^,]+,', f'"{field}": {value},', text, count=1))
    else:
        record, said = P.pointer_path(home), f"evaluation.{field}"
        current = json.loads(record.read_text())
        current["evaluation"][field] = json.loads(value)
        record.write_text(json.dumps(current))
    out = tmp_path / "r.html"
    code, written, _ = run_cli(home, monkeypatch, capsys, "audit", "latest", "--out", str(out))
    assert isinstance(code, str) and "(1 damaged records)" in code, code
    assert f"report written to {out}" in written
    page = out.read_text()
    _parse(page)
    assert f"evaluation record {record} is damaged: {said} is " in page
    assert '<td class="damaged">damaged</td>' in page
