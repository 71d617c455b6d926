"""The asset graph in docs/asset-graph.md and README.md is the one definitions.py builds, and
every relative link in README.md and docs/ reaches a file. After an intended change to the
assets: ``make graph``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSpec, Definitions

from support import asset_graph

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return asset_graph.load_defs()


def test_docs_graph_matches_the_definitions(defs):
    assert asset_graph.DOC.read_text() == asset_graph.doc_text(defs), "stale: run `make graph`"


def test_readme_embeds_the_graph_of_the_definitions(defs):
    readme = asset_graph.README.read_text()
    assert asset_graph.with_block(readme, asset_graph.readme_block(defs)) == readme, (
        "stale: run `make graph`"
    )


def test_the_graph_shows_every_asset_group_and_check(defs):
    text = asset_graph.doc_text(defs)
    for spec in defs.resolve_all_asset_specs():
        assert f'"{spec.key.to_user_string()}' in text
        assert f'["{spec.group_name}"]' in text
    assert "model_evaluation_promotion_gate<br/><i>blocking</i>" in text
    assert "raw_events_has_events<br/><i>warn only</i>" in text
    assert 'landing_event_files[/"landing/event_files<br/><i>external</i>"/]' in text
    assert "lake_training_examples & training_examples_version --> models_ranking_model" in text
    assert 'training_examples_version[/"training/examples_version<br/><i>observed</i>"/]' in text


def _keys(item) -> set[AssetKey]:
    return {item.key} if isinstance(item, AssetSpec) else set(item.keys)


def _without(defs: Definitions, key: AssetKey) -> Definitions:
    return Definitions(
        assets=[a for a in defs.assets if key not in _keys(a)],
        asset_checks=defs.asset_checks,
        resources=defs.resources,
    )


def test_a_removed_asset_changes_the_graph(defs):
    # a leaf: a removed asset that others depend on stays in the graph as their dependency
    modified = _without(defs, AssetKey(["lake", "serving_log"]))
    assert asset_graph.doc_text(modified) != asset_graph.DOC.read_text()
    assert '"lake/serving_log' in asset_graph.DOC.read_text()
    assert '"lake/serving_log' not in asset_graph.doc_text(modified)
    readme = asset_graph.README.read_text()
    assert asset_graph.with_block(readme, asset_graph.readme_block(modified)) != readme


def test_an_added_dependency_changes_the_graph(defs):
    extra = AssetSpec(
        key=AssetKey(["serving", "serving_log"]),
        group_name="serving",
        deps=[AssetKey(["serving", "recommender_bento"])],
    )
    modified = Definitions(
        assets=[*defs.assets, extra], asset_checks=defs.asset_checks, resources=defs.resources
    )
    text = asset_graph.doc_text(modified)
    assert text != asset_graph.DOC.read_text()
    assert "serving_recommender_bento --> serving_serving_log" in text


def test_mermaid_is_deterministic_and_orders_groups_by_depth():
    nodes = [
        asset_graph.Node("b/y", "second", ("a/x",), False, None),
        asset_graph.Node("a/x", "first", (), True, None),
        asset_graph.Node("c/z", "third", ("b/y", "a/x"), False, "daily"),
    ]
    text = asset_graph.mermaid(nodes)
    assert text == asset_graph.mermaid(list(reversed(nodes)))
    assert text.index('["first"]') < text.index('["second"]') < text.index('["third"]')
    assert "  a_x & b_y --> c_z\n" in text
    assert asset_graph.mermaid(nodes[:2]) != text


def test_a_cycle_is_an_error():
    nodes = [
        asset_graph.Node("a", "g", ("b",), False, None),
        asset_graph.Node("b", "g", ("a",), False, None),
    ]
    with pytest.raises(ValueError, match="cycle"):
        asset_graph.mermaid(nodes)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file, fragments dropped, code blocks skipped."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """Links that reach no file, or a file outside the repository (``../shared/...``)."""
    broken = []
    for md in files:
        for target in relative_links(md):
            resolved = (md.parent / target).resolve()
            if not resolved.exists() or not resolved.is_relative_to(root):
                broken.append(f"{md.relative_to(root)}: {target}")
    return broken


def test_every_relative_link_in_the_docs_resolves():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(files) > 2
    assert broken_links(files) == []


def test_the_link_check_catches_a_broken_link(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "there.md").write_text("")
    (tmp_path / "outside.md").write_text("")
    md = repo / "x.md"
    md.write_text(
        "[ok](there.md#a) [web](https://x.org) [gone](missing.md#a) [out](../outside.md)\n"
        "```\n[in a code block](nowhere.md)\n```\n"
    )
    assert broken_links([md], root=repo) == ["x.md: missing.md", "x.md: ../outside.md"]
