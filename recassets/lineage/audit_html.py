"""The audit report (``recassets.lineage.audit.Report``) as one self-contained HTML page.

Inline CSS and inline SVG only: no script, font, image or style sheet is fetched, so the page
opens offline and from an archive. Every value comes from files on disk (manifests, Delta
commit metadata, run tags, quarantined lines) and could be hostile: each goes through
``html.escape`` (``_e``) before it reaches the page, attributes included.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from recassets.lineage import render as text
from recassets.lineage.audit import Evaluation, ModelCard, Report, Version
from recassets.lineage.render import _ranges
from recassets.lineage.verify import VOUCHED, said

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:2px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;
font-variant-numeric:tabular-nums}code,pre{font:12px/1.35 ui-monospace,monospace}
pre{background:#f8f8f8;padding:.6em;overflow:auto}.banner{padding:.6em 1em;font-weight:600}
.bad{background:#fde2e1;color:#8a1111}.good{background:#e3f5e1;color:#165c12}
.note{background:#fff4d6;color:#6b4e00}
.passed,.ok,.archived,.copied{color:#165c12}.failed,.changed,.missing,.damaged{color:#8a1111;font-weight:600}
.card{border:1px solid #ddd;padding:.2em 1em 1em;margin:1em 0}svg{margin:.3em 1em .3em 0}
.muted{color:#666}
"""


_STATUSES = (
    "passed",
    "failed",
    "ok",
    "archived",
    "copied",
    "changed",
    "missing",
    "damaged",
)  # coloured


def _e(v: Any) -> str:
    """A value as escaped text: floats to 4 significant digits, None as a dash; control and
    bidi characters as ``\\x1b`` / ``\\u202e`` text (``render.printable``: a landing file named
    with U+202E showed reversed in the verify table, its ESC kept as it was), accents and CJK
    as they are."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return html.escape(f"{v:.4g}")
    return html.escape(text.printable(str(v)), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: Sequence[str] = ()) -> str:
    """Rows of values (escaped here) under ``head``; ``cls``: a class per column (``n``)."""
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            c = cls[i] if i < len(cls) else ""
            c = c or (str(v) if str(v) in _STATUSES else "")
            attr = f' class="{_e(c)}"' if c else ""
            cells.append(f"<td{attr}>{_e(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def _pairs(rows: Iterable[tuple[str, Any]]) -> str:
    return _table(("", ""), rows)


def _figures(figures: Mapping[str, Any]) -> str:
    """Figures as ``k=v`` text (escaped where it is placed, as a cell)."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )


def svg_plot(title: str, points: Sequence[tuple[str, float]], w: int = 360, h: int = 170) -> str:
    """A line plot of ``points`` (label, value) as inline SVG: labels on the x axis in order,
    the value range on the y axis, each point's value in its tooltip (``<title>``)."""
    left, right, top, bottom = 58, 12, 24, 30
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 0.5), hi + (abs(hi) * 0.1 or 0.5)
    step = (w - left - right) / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i * step if len(points) > 1 else (w - left - right) / 2)
        return round(x, 1), round(top + (hi - v) / (hi - lo) * (h - top - bottom), 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    every = max(1, len(points) // 8)  # at most ~8 x labels
    parts = [
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">',
        f'<text x="{left}" y="15" font-size="12" font-weight="600">{_e(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{_e(hi)}</text>',
        f'<text x="{left - 4}" y="{h - bottom}" font-size="10" text-anchor="end">{_e(lo)}</text>',
    ]
    if len(coords) > 1:
        line = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#2a62b8" stroke-width="1.5"/>')
    for i, ((label, v), (x, y)) in enumerate(zip(points, coords, strict=True)):
        parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="#2a62b8"><title>{_e(label)}: '
                     f"{_e(v)}</title></circle>")  # fmt: skip
        if i % every == 0 or i == len(points) - 1:
            parts.append(f'<text x="{x}" y="{h - bottom + 14}" font-size="10" '
                         f'text-anchor="middle">{_e(label)}</text>')  # fmt: skip
    return "".join(parts) + "</svg>"


def _plots(history: list[Version]) -> str:
    """One plot per main metric across the kind's versions (those that recorded it)."""
    keys: list[str] = []
    for v in history:
        keys += [k for k in v.metrics if k not in keys]
    main = [k for k in keys if k.startswith(("recall@", "ndcg@"))][:2]
    main += [k for k in ("loss", "auc", "logloss") if k in keys]
    out = []
    for key in main:
        points = [(v.number, v.metrics[key]) for v in history if key in v.metrics]
        if points:
            out.append(svg_plot(f"{key} by version", points))
    return "".join(out) or '<p class="muted">no version recorded a plottable metric</p>'


def _evaluation(ev: Evaluation, card: ModelCard, relative: Callable[[str], str]) -> str:
    """What the candidate would serve against the baselines and the model it would replace."""
    keys, rows = ev.keys, []
    served = ev.retrieval.get(ev.served_key, {})
    names = [ev.served_key, "candidate", "current"]
    gate = ev.report.get("gate_baselines")
    baselines = gate if isinstance(gate, list) else [
        "popularity_all_time", "popularity_trailing_7d", "cooccurrence"]  # fmt: skip
    names += [str(b) for b in baselines]
    for name in dict.fromkeys(names):
        m = ev.retrieval.get(name)
        if m is None:
            continue
        label = {"candidate_served": "this version, as served (two-tower + ranker)",
                 "candidate": "this version (two-tower alone)"}.get(name, name)  # fmt: skip
        if name == "current":
            label = f"previous model (current then: {ev.checkpoint('current', card.kind) or '-'})"
        base = m.get(keys[0])
        ours = served.get(keys[0])
        diff = (
            ours - base if isinstance(ours, int | float) and isinstance(base, int | float) else None
        )
        rows.append([label, *(m.get(k) for k in keys), diff, m.get("users")])
    days = ev.report.get("eval_days")
    span = f"{days[0]}..{days[-1]} ({len(days)} days)" if isinstance(days, list) and days else "-"
    head = ["policy", *keys, f"this version's {keys[0]} minus this row's", "users"]
    return (f"<p>Evaluation record <code>{_e(relative(ev.source))}</code> ({_e(ev.note)}); held-out days {_e(span)}; "
            f"catalog {_e(ev.report.get('catalog_size'))} items.</p>"
            + _table(head, rows, ["", *["n"] * (len(keys) + 2)]))  # fmt: skip


def _card(card: ModelCard, relative: Callable[[str], str]) -> str:
    n = card.node
    parts = [f'<div class="card"><h3>model {_e(card.kind)}/{_e(card.number)}</h3>',
             f"<p><code>{_e(relative(card.path))}</code></p>",
             _pairs([(k, v) for k, v in n.facts.items() if v is not None])]  # fmt: skip
    prev = card.previous
    keys = list(card.metrics)
    keys += [k for k in (prev.metrics if prev else {}) if k not in keys]
    if keys:
        head = ["metric (checkpoint)", "this version"]
        head += [f"previous version {prev.number}"] if prev else []
        rows = [[k, card.metrics.get(k), *([prev.metrics.get(k)] if prev else [])] for k in keys]
        parts.append(_table(head, rows, ["", "n", "n"]))
    if prev is None:
        parts.append('<p class="muted">no previous version of this kind in the store</p>')
    if card.evaluations:
        parts += [_evaluation(ev, card, relative) for ev in card.evaluations]
    else:
        parts.append('<p class="muted">no evaluation record scored this version as the candidate '
                     "(kept: evaluation/latest.json and the promoted model's in current.json)"
                     "</p>")  # fmt: skip
    parts.append(f"<h4>{_e(card.kind)} across versions</h4>" + _plots(card.history))
    metric_keys = list(dict.fromkeys(k for v in card.history for k in v.metrics))
    rows = [[v.number, v.created_at, *(v.metrics.get(k) for k in metric_keys), v.problem or ""]
            for v in card.history]  # fmt: skip
    parts.append(_table(["version", "created_at", *metric_keys, "problem"], rows,
                        ["", "", *["n"] * len(metric_keys)]))  # fmt: skip
    parts.append(f"<h4>Training partitions ({len(card.partitions)})</h4>")
    parts.append(_table(["day", "training_examples version", "rows"], card.partitions,
                        ["", "n", "n"]))  # fmt: skip
    return "\n".join(parts) + "</div>"


def render(report: Report) -> str:
    r, tree = report, report.lineage
    bad = r.failed
    if bad:
        names = ", ".join(tree.relative(v.path) for v in bad)
        banner = (f'<p class="banner bad">VERIFY FAILED: {len(bad)} file(s) ({_e(said(bad))}) '
                  f"against the sha256 recorded when they were made: {_e(names)}</p>")  # fmt: skip
    elif not (ok := sum(v.status in VOUCHED for v in r.verified)):  # was: "all 0 files match"
        banner = ('<p class="banner bad">NOTHING VERIFIED: no file on the path has a recorded '
                  "sha256 to check (a lineage manifest missing?): nothing vouches for it</p>")  # fmt: skip
    else:
        later = sum(v.status == "superseded" for v in r.verified)
        mutable = sum(v.status == "rewritten" for v in r.verified)  # the Feast registry
        unchecked = sum(v.status == "unchecked" for v in r.verified)  # a bento's code, older
        banner = (f'<p class="banner good">verify: all {ok} files whose sha256 was recorded '
                  f"match{f'; {later} day(s) re-ingested since, their earlier files not on record' if later else ''}"
                  f"{f'; {mutable} shared file(s) rewritten since by later runs (the Feast registry: not evidence of the data)' if mutable else ''}"
                  f"{'; NOT CHECKED: the bento code it serves (built before recassets recorded it: rebuild it)' if unchecked else ''}</p>")  # fmt: skip
    body = [
        f"<h1>Audit of {_e(r.target)}</h1>",
        f'<p class="muted">generated {_e(r.generated_at)} from RECASSETS_HOME '
        f"<code>{_e(tree.home)}</code>; root <code>{_e(tree.root)}</code></p>",
        banner,
        *(f'<p class="banner note">{_e(note)}</p>' for note in tree.notes),
        "<h2>What is served, and since when</h2>",
        _pairs(r.served) if r.served else '<p class="muted">no bento on this path</p>',
    ]
    if r.request is not None:
        body += ["<h3>The request</h3>", _pairs([(k, v) for k, v in r.request.items()])]
    body.append(f"<h2>Models ({len(r.cards)})</h2>")
    body += [_card(c, tree.relative) for c in r.cards] or ['<p class="muted">none</p>']
    quarantined = {(q.dataset, q.day): q for q in r.quarantine}
    from recassets.lineage.targets import INGEST_TABLES

    rows = []
    for i in r.ingested:
        q = quarantined.get((INGEST_TABLES[i.table], i.day))
        reasons = "; ".join(f"{n}x {reason}" for reason, n in q.reasons) if q else ""
        rows.append([i.table, i.day, i.version, i.rows, i.quarantined,
                     q.rows if q else 0, reasons])  # fmt: skip
    body += [
        "<h2>The data it learned from</h2>",
        f"<p>Ingest partitions on the path; quarantined rows as the lineage manifest counts "
        f"them and as the quarantine table holds them ({_e(r.quarantine_note)}).</p>",
        _table(
            [
                "table",
                "day",
                "Delta version",
                "rows",
                "quarantined (manifest)",
                "quarantined (table)",
                "reasons",
            ],
            rows,
            ["", "", "n", "n", "n", "n"],
        ),  # fmt: skip
        f"<h2>Checks ({len(r.checks)})</h2>",
        _table(
            ["node", "check", "status", "severity", "figures", "source"],
            [
                [n.id, c.name, c.status, c.severity, _figures(c.figures), c.source]
                for n, c in r.checks
            ],
        ),  # fmt: skip
        "<h2>The chain of triggers</h2>",
        _table(
            ["run", "status", "launched by", "what it made"],
            [
                [
                    t.run_id or "no run recorded",
                    t.status,
                    t.launched_by or "not recorded",
                    ", ".join(_ranges(sorted(t.nodes))),
                ]
                for t in r.triggers
            ],
        ),  # fmt: skip
        f"<h2>Verify ({len(r.verified)} files)</h2>",
        banner,
        _table(
            ["file", "what", "status", "recorded sha256", "sha256 now"],
            [[tree.relative(v.path), v.what, v.status, v.recorded, v.actual] for v in r.verified],
        ),  # fmt: skip
        "<h2>Not recorded</h2><ul>",
        *(
            f"<li><code>{_e(n.id)}</code>: {_e(note)}</li>"
            for n in tree.nodes.values()
            for note in n.unrecorded
        ),  # fmt: skip
        "</ul><h2>The lineage tree</h2>",
        # line by line: the tree's own line breaks kept (each line is escaped already)
        "<details><summary>as <code>recassets lineage</code> prints it</summary><pre>"
        + "\n".join(_e(line) for line in text.render(tree, r.verified).splitlines())
        + "</pre></details>",
    ]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Audit of {_e(r.target)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")  # fmt: skip


__all__ = ["render", "svg_plot"]
