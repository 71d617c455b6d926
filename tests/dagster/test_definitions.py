"""The definitions load, and their public surface (asset keys, groups, partitions, backfill
policies, dependencies) matches the snapshot. Asset keys are a public API: Feast, BentoML and
partition history hang on them. After an intended change: UPDATE_SNAPSHOT=1 make test."""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def describe(defs) -> dict:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "backfill_policy": str(node.backfill_policy.policy_type.value)
            if node.backfill_policy
            else None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "materializable": node.is_materializable,
            "checks": sorted(c.name for c in node.check_keys),
            "has_description": bool(node.description),
        }
    return out


def test_definitions_match_snapshot():
    import definitions

    current = describe(definitions.defs)
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "asset surface changed: if intended, UPDATE_SNAPSHOT=1 make test"


def test_snapshot_check_catches_a_rename():
    import definitions

    current = describe(definitions.defs)
    renamed = {k.replace("raw_events", "events_raw"): v for k, v in current.items()}
    assert renamed != json.loads(SNAPSHOT.read_text())


def test_every_materializable_asset_is_described_and_grouped_by_stage():
    import definitions

    stages = {"ingest", "features", "training", "retrieval", "serving"}
    for key, node in describe(definitions.defs).items():
        assert node["group"] in stages, key
        assert node["has_description"], key


def test_the_demo_materializes_every_materializable_asset():
    """Every one but those it leaves out on purpose (the decision log: nothing has been
    served when the demo materializes)."""
    import definitions
    from recassets.cli import DEMO_SELECTION, NOT_IN_DEMO

    materializable = {k for k, n in describe(definitions.defs).items() if n["materializable"]}
    assert set(DEMO_SELECTION) == materializable - set(NOT_IN_DEMO)
    assert set(NOT_IN_DEMO) <= materializable  # a name that is not an asset is not left out


def _imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level names each module of ``package`` imports (absolute imports)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        out[str(path.relative_to(root))] = found
    return out


def test_the_layers_import_one_way_only():
    """resources <- assets <- sensors <- definitions: sensors import assets (keys, partitions,
    config), never the reverse, so the two packages have no import cycle."""
    layers = {"resources": {"assets", "sensors"}, "assets": {"sensors"}, "sensors": set()}
    offenders = {
        module: sorted(found & forbidden)
        for package, forbidden in layers.items()
        for module, found in _imported_packages(package).items()
        if found & forbidden
    }
    assert offenders == {}
    assert any("assets" in f for f in _imported_packages("sensors").values())  # the one way


def markdown_hazards(text: str) -> list[str]:
    """What the UI's Markdown would eat or restyle outside code spans: ``<placeholder>`` (read
    as an HTML tag and dropped), ``*`` (emphasis)."""
    import re

    prose = re.sub(r"`[^`]*`", "", text)
    return re.findall(r"<[^>\s]*>|\*", prose)


def test_descriptions_keep_their_placeholders_through_markdown():
    import definitions

    assert markdown_hazards("tagged name:<time>-<policy> in dt=*/x") == ["<time>", "<policy>", "*"]
    assert markdown_hazards("tagged `name:<time>-<policy>` in `dt=*/x`") == []
    graph = definitions.defs.resolve_asset_graph()
    repo = definitions.defs.get_repository_def()
    texts = {
        **{k.to_user_string(): graph.get(k).description for k in graph.get_all_asset_keys()},
        **{c.name: graph.get(c).description for c in graph.asset_check_keys},
        **{s.name: s.description for s in [*repo.sensor_defs, *repo.schedule_defs]},
        **{j.name: j.description for j in repo.get_all_jobs()},
    }
    offenders = {n: h for n, t in texts.items() if (h := markdown_hazards(t or ""))}
    assert offenders == {}
