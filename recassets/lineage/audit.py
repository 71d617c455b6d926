"""``recassets audit TARGET --out report.html``: one self-contained HTML page for an auditor.

What it gathers (``collect``), all from what is recorded, walked once by ``graph.trace``:

- what is served and since when: the bento's bundle manifest (its policy, with the promotion
  time), ``current.json`` as it stands now, and the request when TARGET is a request id;
- each model's card: its checkpoint's metrics and the data it consumed, the evaluation
  records in which it was the candidate (``evaluation/latest.json`` and the ``evaluation``
  kept in ``current.json``) against the baselines and the model it would replace, and its
  kind's metrics across the versions in the store (read from each checkpoint, memory-mapped);
- the data it learned from: the ingest partitions on the path with rows and quarantined rows
  (their lineage manifests), and the ``quarantine`` Delta table grouped by dataset, day and
  reason for those days;
- every check the tree records with its figures, the chain of runs and what launched each;
- the ``--verify`` result: every recorded sha256 re-hashed.

``audit_html.render`` turns a ``Report`` into the page; ``run`` is the command behind the CLI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from recassets import atomic
from recassets.lineage.graph import Check, Lineage, Node, parse_target, trace
from recassets.lineage.records import shaped
from recassets.lineage.targets import INGEST_TABLES, Target, TargetError
from recassets.lineage.verify import VOUCHED, Verified, failures, verify
from recassets.paths import Paths

# The versions of a kind read for the plot: the newest ones (each read memory-mapped, so the
# tensors are not loaded, but a store of hundreds of versions need not be opened whole).
MAX_VERSIONS = 40
QUARANTINE_TABLE = "quarantine"  # recassets.ingest.pipeline.QUARANTINE_TABLE (Spark-free here)
MAX_REASONS = 5  # quarantine reasons shown per dataset and day, most frequent first


@dataclass
class Evaluation:
    """One evaluation record (``EvaluationReport.to_dict``) and where it was read."""

    source: str  # the file
    report: Mapping[str, Any]
    note: str = "the last evaluation"
    field: str = ""  # where the record lies in its file: "evaluation." in current.json

    @property
    def k(self) -> int:
        return _cutoff(self.report.get("k")) or 50

    @property
    def keys(self) -> list[str]:
        """The retrieval metrics shown: Recall@K, NDCG@10, NDCG@K, HitRate@K."""
        k, n = self.k, _cutoff(self.report.get("ndcg_at")) or 10
        return list(dict.fromkeys([f"recall@{k}", f"ndcg@{n}", f"ndcg@{k}", f"hit_rate@{k}"]))

    @property
    def problem(self) -> str | None:
        """Why the record cannot be shown, naming its file and field: a cutoff that is not a
        whole number of at least 1 (``"k": "abc"`` stopped the audit with "invalid literal for
        int()", ``1e400`` with an OverflowError, no page and no file named)."""
        for key in ("k", "ndcg_at"):
            value = self.report.get(key)
            if value is not None and _cutoff(value) is None:
                shown = json.dumps(value)[:80]
                return (f"evaluation record {self.source} is damaged: {self.field}{key} is {shown}, "
                        "not a whole number of at least 1; its figures are not shown")  # fmt: skip
        return None

    @property
    def retrieval(self) -> Mapping[str, Mapping[str, Any]]:
        r = self.report.get("retrieval")
        return {str(p): m for p, m in r.items() if isinstance(m, Mapping)} if _is_map(r) else {}

    @property
    def served_key(self) -> str:
        return "candidate_served" if "candidate_served" in self.retrieval else "candidate"

    def checkpoint(self, role: str, kind: str) -> str | None:
        c = self.report.get("checkpoints")
        value = c.get(f"{role}_{kind}") if _is_map(c) else None
        return str(value) if value else None


@dataclass
class Version:
    """One checkpoint version of a kind: its scalar metrics, and the evaluation's where one
    scored it as the candidate."""

    number: str
    path: str
    created_at: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    problem: str | None = None  # why it could not be read


@dataclass
class ModelCard:
    node: Node
    kind: str
    number: str
    path: str
    metrics: dict[str, Any]
    partitions: list[tuple[str, Any, Any]]  # (day, training_examples version, rows)
    evaluations: list[Evaluation]
    history: list[Version]
    previous: Version | None


@dataclass
class Ingested:
    table: str
    day: str
    version: Any
    rows: Any
    quarantined: Any  # as the lineage manifest counts them
    node_id: str


@dataclass
class Quarantined:
    dataset: str
    day: str
    rows: int
    reasons: list[tuple[str, int]]


@dataclass
class Trigger:
    run_id: str | None
    status: str | None
    launched_by: str | None
    nodes: list[str]


@dataclass
class Report:
    target: str
    lineage: Lineage
    verified: list[Verified]
    served: list[tuple[str, Any]]
    request: dict[str, Any] | None
    cards: list[ModelCard]
    ingested: list[Ingested]
    quarantine: list[Quarantined]
    quarantine_note: str
    checks: list[tuple[Node, Check]]
    triggers: list[Trigger]
    generated_at: str

    @property
    def failed(self) -> list[Verified]:
        return failures(self.verified)


def collect(paths: Paths, target: Target, shown: str | None = None) -> Report:
    """Everything the page shows. ``LookupError`` when the target does not exist."""
    tree = trace(paths, target)
    nodes = [n for _, n, seen in tree.walk() if not seen]
    read = _evaluations(paths)
    evaluations = [e for e in read if e.problem is None]
    request = next((n for n in nodes if n.kind == "request"), None)
    bento = next((n for n in nodes if n.kind == "bento"), None)
    cards = [_card(paths, n, evaluations) for n in nodes if n.kind == "model"]
    ingested = _ingested(nodes)
    quarantine, note = _quarantine(paths, ingested)
    return Report(
        target=shown or target.name,
        lineage=tree,
        verified=sorted([*verify(tree), *_damaged(read)], key=lambda v: v.path),
        served=_served(paths, bento),
        request=dict(request.facts) if request else None,
        cards=cards,
        ingested=ingested,
        quarantine=quarantine,
        quarantine_note=note,
        checks=[(n, c) for n in nodes for c in n.checks],
        triggers=_triggers(nodes),
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _cutoff(v: Any) -> int | None:
    """A recorded cutoff (``k``, ``ndcg_at``): a whole number of at least 1, else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else None


def _is_map(v: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(v, Mapping)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if f == f else None  # NaN is not plotted


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and os.path.normpath(str(a)) == os.path.normpath(str(b))


# --- what is served -----------------------------------------------------------------------------


def _served(paths: Paths, bento: Node | None) -> list[tuple[str, Any]]:
    from recassets.training import policy as P

    rows: list[tuple[str, Any]] = []
    if bento is not None:
        manifest = _read_json(Path(str(bento.dataset)) / "src" / "bundle" / "manifest.json")
        lineage = manifest.get("lineage") if _is_map(manifest) else None
        policy = lineage.get("policy") if _is_map(lineage) else None
        policy = policy if _is_map(policy) else {}
        rows += [
            ("bento", bento.id.removeprefix("bento ")),
            ("bento built at", bento.facts.get("created_at")),
            ("bento digest", bento.facts.get("digest")),
            ("bento policy", policy.get("policy")),
            (
                "bento models",
                ", ".join(
                    str(policy[k])
                    for k in (*P.KINDS, "item_similarity", "light_ranker")
                    if policy.get(k)
                )
                or None,
            ),
            ("bento order (bento's policy)", _order(policy)),
            ("bento features day", bento.facts.get("features_day")),
            ("promoted at (bento's policy)", policy.get("promoted_at")),
            ("popularity variant (bento's policy)", policy.get("variant")),
        ]
        reasons = policy.get("reasons")
        if isinstance(reasons, list):
            rows.append(("gate reasons (bento's policy)", "; ".join(map(str, reasons))))
    pointer = P.pointer_path(paths)
    now = _read_json(pointer) if pointer.is_file() else None
    if _is_map(now):
        rows += [
            ("current.json policy (serves next build)", now.get("policy")),
            (
                "current.json models",
                ", ".join(
                    str(now[k]) for k in (*P.KINDS, "item_similarity", "light_ranker") if now.get(k)
                )
                or None,
            ),
            ("current.json order", _order(now)),
            ("current.json promoted_at", now.get("promoted_at")),
            ("current.json updated_at", now.get("updated_at")),
        ]
    else:
        rows.append(("current.json", f"none at {pointer}: the popularity default"))
    return [(k, v) for k, v in rows if v is not None]


# --- models -------------------------------------------------------------------------------------


def _order(policy: Mapping[str, Any]) -> Any:
    """The order a policy serves, and when it is co-occurrence's fallback, that."""
    if policy.get("fallback") == "cooccurrence":
        return f"{policy.get('order')}: co-occurrence, served while nothing learned passes"
    return policy.get("order")


def _evaluations(paths: Paths) -> list[Evaluation]:
    """The evaluation records kept: the last one, and the promoted model's in current.json."""
    from recassets.training import policy as P

    found: list[Evaluation] = []
    latest = _read_json(P.evaluation_path(paths))
    if _is_map(latest):
        found.append(Evaluation(str(P.evaluation_path(paths)), latest))
    current = _read_json(P.pointer_path(paths))
    ev = current.get("evaluation") if _is_map(current) else None
    if _is_map(ev) and all(ev != e.report for e in found):
        found.append(Evaluation(str(P.pointer_path(paths)), ev, "kept at promotion", "evaluation."))
    return found


def _damaged(evaluations: list[Evaluation]) -> list[Verified]:
    """The evaluation records that cannot be shown, as ``damaged`` rows of the verify table:
    the page is written, its banner and the exit status say so, as for a damaged manifest."""
    return [Verified(e.source, p, "damaged") for e in evaluations if (p := e.problem)]


def _header(path: Path) -> Version:
    """A checkpoint's metrics without loading its tensors (``mmap``), or why it cannot be read."""
    import torch

    number = path.stem
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a damaged file is reported on the card, not fatal
        return Version(number, str(path), problem=f"unreadable: {type(e).__name__}")
    if not _is_map(raw):
        return Version(number, str(path), problem="not a checkpoint")
    metrics = raw.get("metrics")
    scalars = {str(k): f for k, v in (metrics or {}).items() if (f := _number(v)) is not None}
    created = raw.get("created_at")
    return Version(number, str(path), str(created) if created else None, scalars)


def _history(paths: Paths, kind: str, evaluations: list[Evaluation]) -> list[Version]:
    from recassets.training.policy import checkpoint_versions

    versions = [_header(p) for p in checkpoint_versions(paths, kind)[-MAX_VERSIONS:]]
    for v in versions:
        for ev in evaluations:
            if _same(ev.checkpoint("candidate", kind), v.path):
                scored = ev.retrieval.get(ev.served_key, {})
                for key in ev.keys[:2]:  # Recall@K and NDCG@10 of what it would serve
                    if (f := _number(scored.get(key))) is not None:
                        v.metrics[key] = f
    return versions


def _card(paths: Paths, node: Node, evaluations: list[Evaluation]) -> ModelCard:
    kind, _, number = node.id.removeprefix("model ").partition("/")
    path = str(node.dataset)
    history = _history(paths, kind, evaluations)
    mine = next((i for i, v in enumerate(history) if _same(v.path, path)), None)
    previous = history[mine - 1] if mine else None
    partitions: list[tuple[str, Any, Any]] = []
    metrics: dict[str, Any] = {}
    if Path(path).is_file():
        from recassets.training.checkpoint import Checkpoint

        try:
            ckpt = Checkpoint.load(path)
        except (OSError, ValueError):  # damaged or unreadable: the tree and verify say so
            ckpt = None
        if ckpt is not None:
            metrics = {k: v for k, v in ckpt.metrics.items() if not _is_map(v)}
            parts = ckpt.source.get("partitions") or {}
            partitions = [
                (str(d), p.get("version"), p.get("rows"))
                for d, p in sorted(parts.items())
                if _is_map(p)
            ]
    mine_evals = [e for e in evaluations if _same(e.checkpoint("candidate", kind), path)]
    return ModelCard(node, kind, number, path, metrics, partitions, mine_evals, history, previous)


# --- data ---------------------------------------------------------------------------------------


def _ingested(nodes: list[Node]) -> list[Ingested]:
    out = []
    for n in nodes:
        table = n.job.removeprefix("lake/")
        if n.kind == "partition" and table in INGEST_TABLES and n.facts.get("day"):
            out.append(Ingested(table, str(n.facts["day"]), n.facts.get("written_at_version"),
                                n.facts.get("rows"), n.facts.get("quarantined"), n.id))  # fmt: skip
    return sorted(out, key=lambda i: (i.table, i.day))


def _quarantine(paths: Paths, ingested: list[Ingested]) -> tuple[list[Quarantined], str]:
    """The quarantine table's rows for the ingest partitions on the path, per dataset and day."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from recassets.lake import existing_delta

    path = paths.table(QUARANTINE_TABLE)
    wanted = {(INGEST_TABLES[i.table], i.day) for i in ingested}
    if not wanted:
        return [], "no ingest partition on the path"
    days = pa.array(sorted({dt.date.fromisoformat(d) for _, d in wanted}), pa.date32())
    try:  # a damaged log or a data file gone: said where the table is, the page still written
        table = existing_delta(path)
        if table is None:
            return [], f"no quarantine table at {path}: nothing was ever quarantined"
        rows = (
            table.to_pyarrow_dataset()
            .to_table(columns=["dataset", "dt", "reason"], filter=pc.field("dt").isin(days))
            .group_by(["dataset", "dt", "reason"])
            .aggregate([([], "count_all")])
            .to_pylist()
        )
    except (OSError, ValueError) as e:
        return [], f"the quarantine table at {path} cannot be read: {e}"
    counts: dict[tuple[str, str], Counter[str]] = {}
    for r in rows:
        key = (str(r["dataset"]), r["dt"].isoformat())
        if key in wanted:
            counts.setdefault(key, Counter())[str(r["reason"])] += int(r["count_all"])
    out = [
        Quarantined(ds, day, sum(c.values()), c.most_common(MAX_REASONS))
        for (ds, day), c in sorted(counts.items())
    ]
    note = f"{QUARANTINE_TABLE}@{table.version()}, the days of the ingest partitions on the path"
    return out, note


def _triggers(nodes: list[Node]) -> list[Trigger]:
    """The runs on the path, bento first, each with what launched it and what it made."""
    runs: dict[str | None, Trigger] = {}
    for n in nodes:
        if n.kind == "landing":
            continue
        t = runs.setdefault(n.run_id, Trigger(n.run_id, n.run_status, n.launched_by, []))
        t.nodes.append(n.id)
    return [t for key, t in runs.items() if key is not None] + (
        [runs[None]] if None in runs else []
    )


# --- the command --------------------------------------------------------------------------------


def write(report: Report, out: str | os.PathLike[str]) -> Path:
    """The page, written atomically (a reader never sees half of it)."""
    from recassets.lineage.audit_html import render

    return atomic.write_text(out, render(report))


def run(args: argparse.Namespace, paths: Paths) -> None:
    """Parse TARGET (a usage error writes nothing), collect, write the page, say where; exit 1
    when a recorded file differs (the page is written and says so at its top)."""
    parser: argparse.ArgumentParser = args.parser
    try:
        target = parse_target(args.target, args.day)
    except TargetError as e:
        parser.error(str(e))
    try:
        with shaped():
            report = collect(paths, target, args.target if args.day is None else
                             f"{args.target} {args.day}")  # fmt: skip
    except LookupError as e:
        raise SystemExit(f"recassets audit: {e.args[0] if e.args else e}") from None
    if str(args.out) == "-":  # the page on standard output (``audit T --out - > r.html``)
        from recassets.lineage.audit_html import render

        sys.stdout.write(render(report))
        sys.stdout.flush()
    else:
        out = write(report, args.out)
        print(f"recassets audit: report written to {out}")
    if bad := report.failed:
        from recassets.lineage.render import printable
        from recassets.lineage.verify import said

        # escaped as the tree's lines are: a file named with ESC cleared the terminal
        names = printable(", ".join(report.lineage.relative(v.path) for v in bad))
        raise SystemExit(f"recassets audit: verify: {len(bad)} file(s) fail ({said(bad)}): {names}")
    if not any(v.status in VOUCHED for v in report.verified):  # as `lineage --verify` refuses it
        raise SystemExit("recassets audit: verify: no recorded file on the path to verify "
                         "(a lineage manifest missing?): nothing vouches for it")  # fmt: skip


__all__ = ["Report", "collect", "run", "write"]
