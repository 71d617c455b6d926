"""``recassets lineage TARGET [DAY] [--json] [--verify] [--manifest]``: the command behind
the CLI's ``lineage`` (``recassets.cli`` keeps only its parser). Parse TARGET, walk its lineage,
print it as a tree or as OpenLineage run events; ``--verify`` re-hashes what was recorded and
exits 1 naming each file that differs; ``--manifest`` prints one ingest manifest as written."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recassets import lineage as L
from recassets.lake import partition_day
from recassets.lineage import render, verify
from recassets.lineage.openlineage import to_json_lines
from recassets.lineage.records import RecordError, read_record, shaped
from recassets.paths import Paths


def run(args: argparse.Namespace, paths: Paths) -> None:
    """Parse TARGET, walk its lineage (``recassets.lineage``), print it; ``--verify`` exits 1
    naming each changed or missing file. A TARGET that names nothing valid is a usage error."""
    if args.strict and not args.verify:  # would be dropped in silence
        args.parser.error("--strict goes with --verify")
    if args.manifest:
        if args.verify or args.json:  # were dropped in silence: a --verify that checked nothing
            args.parser.error(
                "--manifest prints one record as written: not with --verify or --json"
            )
        _print_manifest(args, paths)
        return
    parser: argparse.ArgumentParser = args.parser
    try:
        target = L.parse_target(args.target, args.day)
    except L.TargetError as e:
        parser.error(str(e))
    with shaped():
        try:
            tree = L.trace(paths, target)
        except LookupError as e:
            raise SystemExit(f"recassets lineage: {e.args[0] if e.args else e}") from None
        checked = verify.verify(tree) if args.verify else None
        text = to_json_lines(tree) if args.json else render.render(tree, checked) + "\n"
    sys.stdout.write(text)
    if checked is not None:
        print(render.render_verify(checked, tree), file=sys.stderr if args.json else sys.stdout)
        if bad := verify.failures(checked, strict=args.strict):
            names = render.printable(", ".join(tree.relative(v.path) for v in bad))
            raise SystemExit(f"recassets lineage --verify: {len(bad)} file(s) fail "
                             f"({verify.said(bad)}): {names}")  # fmt: skip
        if not any(v.status in verify.VOUCHED for v in checked):  # "nothing" was exit 0
            raise SystemExit("recassets lineage --verify: no recorded file on the path to verify "
                             "(a lineage manifest missing?): nothing vouches for it")  # fmt: skip


def _print_manifest(args: argparse.Namespace, paths: Paths) -> None:
    """``--manifest``: the ingest manifest of one partition, as written."""
    parser: argparse.ArgumentParser = args.parser
    if args.target not in LINEAGE_TABLES or args.day is None:
        parser.error(f"--manifest takes TABLE DAY, TABLE one of {', '.join(LINEAGE_TABLES)}")
    try:
        day = partition_day(args.day)
    except ValueError as e:
        parser.error(str(e))
    from recassets.ingest.lineage import lineage_path

    path = lineage_path(paths, args.target, day)
    if not Path(path).is_file():
        raise SystemExit(f"recassets lineage: no manifest for {args.target} on {day}")
    try:  # damaged: named (was a bare JSONDecodeError or UnicodeDecodeError)
        manifest = read_record(path)
    except RecordError as e:
        raise SystemExit(f"recassets lineage: {e}") from None
    print(json.dumps(manifest, indent=2))


# What `recassets lineage --manifest` accepts (recassets.ingest.lineage checks them again): a
# table from this fixed set and a day parsed as a date, so nothing typed becomes a path of its
# own. Without --manifest, recassets.lineage.parse_target checks TARGET the same way.
LINEAGE_TABLES = ("items", "raw_events", "serving_log", "users")
