"""``assets.keys`` is the one place asset keys are spelled: the lake keys name the library's
Delta tables, and no other module of the Dagster layer builds an ``AssetKey`` from a literal."""

from __future__ import annotations

import ast
from pathlib import Path

from dagster import AssetKey

from assets import keys

ROOT = Path(__file__).resolve().parents[2]


def test_lake_keys_name_the_tables_the_library_writes():
    from recassets.events import CONTRACTS, SERVING_LOG
    from recassets.features.schema import TABLES
    from recassets.ingest import INGESTED_TABLES, TABLE_NAMES
    from recassets.training.examples import TABLE

    assert set(keys.INGESTED) == set(CONTRACTS) == set(keys.LANDING)
    assert {d: k.path for d, k in keys.INGESTED.items()} == {
        d: ["lake", t] for d, t in TABLE_NAMES.items()
    }
    assert [k.path for k in keys.FEATURE_TABLES] == [["lake", t] for t in TABLES]
    assert keys.TRAINING_EXAMPLES.path == ["lake", TABLE]
    assert keys.SERVING_LOG.path == ["lake", INGESTED_TABLES[SERVING_LOG.name]]


def test_every_key_is_distinct():
    named = {n: v for n, v in vars(keys).items() if n.isupper() and isinstance(v, AssetKey)}
    every = [*named.values(), *keys.LANDING.values()]
    assert len(every) == len(set(every)) == 23  # the assets of the definitions
    assert set(keys.INGESTED.values()) | set(keys.FEATURE_TABLES) | set(keys.MODELS) <= set(every)


def key_literals(path: Path) -> list[int]:
    """Lines of ``AssetKey(...)`` calls with a literal argument (a list, a string)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "AssetKey"
            and node.args
            and isinstance(node.args[0], (ast.List, ast.Constant))
        ):
            lines.append(node.lineno)
    return lines


def test_keys_are_spelled_in_assets_keys_only():
    sources = [ROOT / "definitions.py"]
    for package in ("assets", "sensors", "resources"):
        sources += sorted((ROOT / package).rglob("*.py"))
    offenders = {
        str(p.relative_to(ROOT)): lines
        for p in sources
        if p.name != "keys.py" and (lines := key_literals(p))
    }
    assert offenders == {}
    assert key_literals(ROOT / "assets" / "keys.py")  # the detector sees them where they are
