"""A real ``bentoml build`` (an empty home's popularity bundle), read as the image and the
service read it (review of 2026-12-07):

- its image installs what was tested: the bento carries the lock's uv overrides in
  ``env/python/overrides.txt`` and its bento.yaml sets ``UV_OVERRIDE`` to it, which the
  Dockerfile BentoML generates sets before its install step, after copying ``env/python``
  (the install had pulled the 475 MB CUDA ``fbgemm-gpu`` beside ``fbgemm-gpu-cpu``);
- its code and environment are on record: an edited ``src/service.py`` is refused at start and
  by ``lineage --verify``; the torch build is a label, and in the digest (the cpu and pypi
  bentos of the same inputs shared both);
- a bento brought in by ``bentoml import`` counts as the newest (``store.latest_bento``) when it
  is whole, and a half copy does not.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recassets.bento import bundle as B
from recassets.bento import store as S
from recassets.funnel.bundle import Bundle
from recassets.lineage.verify import _code_check, _digest_check
from recassets.training.checkpoint import DamagedArtifactError
from tests.deploy.test_serving_lock import UV, pins

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bentos(make_home: Callable[[str], Any]) -> dict[str, Any]:
    """Both torch builds of one popularity bundle, in one home; (home, {variant: tag})."""
    paths = make_home("bento-build")
    tags = {}
    with B.staged_bundle(paths) as folder:
        for variant in ("pypi", "cpu"):  # tagged as a build tags them (the digest last)
            tags[variant] = B.build_bento(paths, folder, variant=variant)
    return {"paths": paths, "tags": tags}


def _folder(bentos: dict[str, Any], variant: str) -> Path:
    return B.bento_folder(bentos["paths"], bentos["tags"][variant])


@pytest.mark.parametrize("variant", ["pypi", "cpu"])
def test_the_image_installs_with_the_locks_overrides(bentos, variant):
    bento = _folder(bentos, variant)
    overrides = bento / "env" / "python" / "overrides.txt"
    assert overrides.read_text() == (REPO / "overrides.txt").read_text()
    assert "fbgemm-gpu ; sys_platform == 'never'" in overrides.read_text()
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    install = re.search(r"pip install -r \S*requirements\.txt", dockerfile)
    assert install is not None, dockerfile
    before = dockerfile[: install.start()]
    assert f"UV_OVERRIDE={B.IMAGE_OVERRIDES}" in before, before
    assert re.search(r"^COPY .*\./env/python \./env/python/", before, re.M), before
    # the path is the image's bento path (BENTO_PATH) where env/python lands
    assert re.search(r"^ARG BENTO_PATH=/home/bentoml/bento$", dockerfile, re.M), dockerfile
    assert B.IMAGE_OVERRIDES == "/home/bentoml/bento/env/python/overrides.txt"


def test_uv_keeps_the_cuda_fbgemm_out_only_with_the_bentos_overrides(bentos, tmp_path):
    """What ``UV_OVERRIDE`` changes in uv's resolution of the bento's requirements, offline
    (skipped when uv's cache lacks a package's metadata): without it, torchrec's declared
    ``fbgemm-gpu`` is added beside the lock's ``fbgemm-gpu-cpu``."""
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make install` first")
    bento = _folder(bentos, "pypi")
    requirements = bento / "env" / "python" / "requirements.txt"
    names = {}
    for case, env in (("with", {"UV_OVERRIDE": str(bento / "env/python/overrides.txt")}),
                      ("without", {})):  # fmt: skip
        done = subprocess.run(
            [str(UV), "pip", "compile", "-q", "--offline", "--python-version", "3.11",
             str(requirements), "-o", str(tmp_path / f"{case}.txt")],
            capture_output=True, text=True, timeout=600,
            env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **env},
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"uv cannot resolve offline here:\n{done.stderr[-1500:]}")
        names[case] = set(pins((tmp_path / f"{case}.txt").read_text()))
    assert "fbgemm-gpu-cpu" in names["with"] and "fbgemm-gpu" not in names["with"]
    assert "fbgemm-gpu" in names["without"]


def test_the_code_and_torch_build_are_recorded_labelled_and_in_the_digest(bentos):
    records, digests = {}, {}
    for variant in ("pypi", "cpu"):
        bento = _folder(bentos, variant)
        manifest = json.loads((bento / "src" / "bundle" / "manifest.json").read_text())
        records[variant], digests[variant] = manifest["code"], manifest["digest"]
        assert bentos["tags"][variant].endswith(manifest["digest"])
        assert manifest["digest"] == B.manifest_digest(manifest)
        labels = (bento / "bento.yaml").read_text()
        assert f"torch: {variant}" in labels and f"digest: {manifest['digest']}" in labels
        assert "service.py" in manifest["code"]["files"]
        assert "recassets/bento/bundle.py" in manifest["code"]["files"]
        assert not [f for f in manifest["code"]["files"] if "__pycache__" in f]
        Bundle.load(bento / "src" / "bundle", code=bento / "src")  # as built: loads
        assert _digest_check(bento / "src/bundle/manifest.json", bento.name).status == "ok"
        assert _code_check(bento / "src" / "bundle" / "manifest.json") == []
    assert records["pypi"]["files"] == records["cpu"]["files"]  # the same code ...
    assert records["pypi"]["torch"] == "pypi" and records["cpu"]["torch"] == "cpu"
    assert records["pypi"]["requirements"] != records["cpu"]["requirements"]
    assert digests["pypi"] != digests["cpu"]  # ... another environment, another digest


def test_an_edited_service_is_refused_at_start_and_by_verify(bentos, tmp_path):
    bento = tmp_path / "bento"
    shutil.copytree(_folder(bentos, "cpu"), bento)
    service = bento / "src" / "service.py"
    service.write_text(
        service.read_text().replace("MAX_RANK_ITEMS = 1000", "MAX_RANK_ITEMS = 10**6")
    )
    with pytest.raises(DamagedArtifactError, match=f"bento code file {service} was changed"):
        Bundle.load(bento / "src" / "bundle", code=bento / "src")
    found = _code_check(bento / "src" / "bundle" / "manifest.json")
    assert [(v.path, v.status) for v in found] == [(str(service), "changed")]
    # the tag's digest still matches the manifest: the code record is what tells
    assert _digest_check(bento / "src/bundle/manifest.json", bento.name).status == "ok"


def test_an_imported_bento_counts_and_a_half_copy_does_not(bentos, make_home):
    """``bentoml import`` registers a bento without this home's mark: it counts once whole.
    A build killed mid-copy leaves a folder with some files: it never counts."""
    paths = make_home("bento-import")
    built = _folder(bentos, "cpu")
    assert S.latest_bento(paths) is None
    # a build of this home, marked, older than the import
    old = f"{S.BENTO_NAME}:20250101t000000-popularity-old"
    shutil.copytree(_folder(bentos, "pypi"), S.bento_folder(paths, old))
    S.mark_built(paths, old)
    imported = S.bento_folder(paths, bentos["tags"]["cpu"])
    shutil.copytree(built, imported)  # what `bentoml import` writes: the bento, no mark
    assert S.latest_bento(paths) == bentos["tags"]["cpu"]
    assert bentos["tags"]["cpu"].split(":")[1] in list(S.counted(paths))
    # its model rows are kept published too (it serves: `bentoml serve NAME` takes it)
    manifest = json.loads((imported / "src/bundle/manifest.json").read_text())
    shas = {v["sha256"] for v in manifest["lineage"].values()
            if isinstance(v, dict) and v.get("sha256")}  # fmt: skip
    assert shas <= S.recent_model_sha256s(paths, 1)
    # a half copy: any file it lists cut short or not there yet
    for cut in ("src/service.py", "src/recassets/funnel/bundle.py", "env/python/overrides.txt",
                "src/bundle/manifest.json"):  # fmt: skip
        shutil.rmtree(imported)
        shutil.copytree(built, imported)
        (imported / cut).write_bytes((imported / cut).read_bytes()[:10])
        assert S.latest_bento(paths) == old, cut
    (imported / "src" / "bundle" / "manifest.json").unlink()
    assert S.latest_bento(paths) == old
