"""A lineage tree as text: what ``recassets lineage TARGET`` prints.

One block per node, indented by depth: its name and facts on the first line, then its run (id,
status, what launched it), its checks with their figures, its files with sha256, and what is
not recorded. A node printed above is named again with ``(above)`` and not expanded."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from recassets.lineage.graph import Lineage, Node
from recassets.lineage.verify import Verified

_SKIP = {"day"}  # already in the node's name


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _facts(node: Node) -> str:
    return ", ".join(
        f"{k} {_value(v)}" for k, v in node.facts.items() if v is not None and k not in _SKIP
    )


MAX_INDENT = 16  # deeper nodes (a long day-by-day chain) say their depth instead


def _indent(depth: int) -> str:
    return "  " * depth if depth <= MAX_INDENT else "  " * MAX_INDENT + f"[{depth}] "


_DAY = re.compile(r"^(\S+) dt=([0-9]{4}-[0-9]{2}-[0-9]{2})$")  # ASCII: \d takes any script's


def _date(text: str) -> dt.date | None:
    """A node's day, or None: it comes from a commit's metadata, which anyone may have written
    (``2026-13-45`` stopped the tree with a ValueError)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _ranges(ids: list[str]) -> list[str]:
    """``raw_events@1 dt=2026-01-01`` .. ``dt=2026-01-13`` as one ``dt=2026-01-01..13 (13 days)``
    entry per run of consecutive days of the same table version."""
    out: list[str] = []
    run: list[tuple[str, dt.date]] = []

    def close() -> None:
        if len(run) > 2:
            out.append(f"{run[0][0]} dt={run[0][1]}..{run[-1][1]} ({len(run)} days)")
        else:
            out.extend(f"{name} dt={day}" for name, day in run)
        run.clear()

    for node_id in ids:
        m = _DAY.match(node_id)
        day = _date(m.group(2)) if m else None
        if m is None or day is None:
            close()
            out.append(node_id)
            continue
        name = m.group(1)
        if run and (run[-1][0] != name or day - run[-1][1] != dt.timedelta(1)):
            close()
        run.append((name, day))
    close()
    return out


def render(lineage: Lineage, verified: list[Verified] | None = None) -> str:
    lines: list[str] = []
    status = {v.path: v.status for v in verified or []}
    status |= {v.recorded_as: v.status for v in verified or [] if v.recorded_as}
    lines += [f"note: {note}" for note in lineage.notes]
    above: list[str] = []  # consecutive siblings printed above: one line for them all
    above_depth = 0

    def flush() -> None:
        if above:
            lines.append(_indent(above_depth) + "- (above) " + ", ".join(_ranges(above)))
            above.clear()

    for depth, node, seen in lineage.walk():
        if seen and node.kind != "landing":
            if above and depth != above_depth:
                flush()
            above.append(node.id)
            above_depth = depth
            continue
        flush()
        pad = _indent(depth)
        more = _indent(depth + 1) + "  "
        if node.kind == "landing":
            a = node.artifacts[0]
            mark = f"  [{status[a.path]}]" if a.path in status else ""
            lines.append(f"{pad}- landing {lineage.relative(a.path)}  {a.size} B  "
                         f"sha256 {a.sha256}{mark}")  # fmt: skip
            continue
        facts = _facts(node)
        lines.append(f"{pad}- {node.id}" + (f": {facts}" if facts else ""))
        if node.run_id:
            launched = node.launched_by or "not recorded"
            lines.append(f"{more}run {node.run_id} ({node.run_status or 'status not recorded'}, "
                         f"launched by {launched})")  # fmt: skip
        for c in node.checks:
            figures = ", ".join(f"{k}={_value(v)}" for k, v in c.figures.items())
            sev = f", severity {c.severity}" if c.severity else ""
            lines.append(f"{more}check {c.name}: {c.status}{sev}"
                         + (f" ({figures})" if figures else "") + f" [{c.source}]")  # fmt: skip
        for a in node.artifacts:
            mark = f" [{status[a.path]}]" if a.path in status else ""
            sha = a.sha256 or "not recorded"
            lines.append(f"{more}file {lineage.relative(a.path)} sha256 {sha}{mark}")
        for note in node.unrecorded:
            lines.append(f"{more}not recorded: {note}")
    flush()
    n_files = len(lineage.landing_files())
    lines.append(f"{len(lineage.nodes) - n_files} nodes, {n_files} landing files")
    return "\n".join(printable(line) for line in lines)


# C0 and C1 control characters (ESC, BEL, a bare CR ...), none of which a tree line needs, and
# the invisible ones that reorder or break what follows them: the bidi marks, embeddings,
# overrides and isolates (U+061C, U+200E-200F, U+202A-202E, U+2066-2069; a file named
# "x\u202egpj.exe" showed as "xexe.jpg") and the line and paragraph separators (U+2028-2029)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(line: str) -> str:
    """``line`` with control and bidi characters escaped (``\\x1b``, ``\\u202e``): a value from
    the data (a served request's user id ``"\\x1b[2J..."``) cleared the auditor's screen, or hid
    a later ``verify: CHANGED`` line. Other text, accents and CJK included, stays as it is."""
    return _CONTROL.sub(_escaped, line)


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# statuses whose line is the file and what it is (the others add a detail)
SAID_AS_IS = ("superseded", "stale", "damaged", "archived", "copied", "rewritten", "unchecked")


def render_verify(verified: list[Verified], lineage: Lineage) -> str:
    counts: dict[str, int] = {}
    lines = []
    for v in verified:
        counts[v.status] = counts.get(v.status, 0) + 1
        if v.status == "outside":
            lines.append(
                f"verify: OUTSIDE {v.path} ({v.what}; recorded outside this home's folders: "
                "another home's file, not verified here)"
            )
        elif v.status == "unverifiable" and not v.what.endswith(" checkpoint"):
            lines.append(
                f"verify: UNVERIFIABLE {lineage.relative(v.path)} ({v.what}; its record holds "
                "no sha256, which every record recassets writes has: edited, or older)"
            )
        elif v.status in SAID_AS_IS:
            lines.append(f"verify: {v.status.upper()} {lineage.relative(v.path)} ({v.what})")
        elif v.status in ("changed", "missing"):
            detail = f"recorded {v.recorded}" + (f", now {v.actual}" if v.actual else "")
            detail = detail if v.recorded else "nothing vouches for it"
            lines.append(
                f"verify: {v.status.upper()} {lineage.relative(v.path)} ({v.what}; {detail})"
            )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"verify: {summary or 'no files on the path'}")
    return "\n".join(printable(line) for line in lines)


__all__ = ["printable", "render", "render_verify"]
