"""Code references (``assets.references``): every asset links to its body and its library
function; with ``RECASSETS_GIT_URL``, as repository URLs."""

from __future__ import annotations

from pathlib import Path

from dagster import UrlCodeReference

from assets import features, ingest, keys, serving
from assets.references import GIT_URL_ENV, LIBRARY, ROOT, with_code_references

ASSETS = [*ingest.ASSETS, *features.ASSETS, *serving.ASSETS]


def _refs(assets, key):
    for a in assets:
        specs = [a] if not hasattr(a, "specs") else list(a.specs)
        for spec in specs:
            if spec.key == key:
                return spec.metadata["dagster/code_references"].code_references
    raise KeyError(key)


def test_each_asset_links_to_its_body_and_its_library_function(monkeypatch):
    monkeypatch.delenv(GIT_URL_ENV, raising=False)
    linked = with_code_references(ASSETS)
    refs = _refs(linked, keys.USER_FEATURES)
    assert [Path(r.file_path).relative_to(ROOT).as_posix() for r in refs] == [
        "assets/features.py",
        "recassets/features/pipelines.py",
    ]
    lines = (ROOT / "recassets/features/pipelines.py").read_text().splitlines()
    assert lines[refs[1].line_number - 1].startswith("def build_features(")
    for file, function in set(LIBRARY.values()):  # every named function exists where named
        assert (ROOT / file).is_file(), file
        assert function is None or f"\ndef {function}(" in (ROOT / file).read_text(), function


def test_with_a_repository_url_the_links_open_the_repository(monkeypatch):
    monkeypatch.setenv(GIT_URL_ENV, "https://github.com/example/recassets/")
    refs = _refs(with_code_references(ASSETS), keys.RECOMMENDER_BENTO)
    assert all(isinstance(r, UrlCodeReference) for r in refs)
    urls = [r.url for r in refs]
    assert urls[0].startswith("https://github.com/example/recassets/tree/main/assets/serving.py#L")
    assert urls[1].startswith(
        "https://github.com/example/recassets/tree/main/recassets/bento/bundle.py#L"
    )
