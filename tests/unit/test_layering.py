"""recassets/ is the library: it never imports Dagster (or the Dagster layer)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("dagster", "assets", "sensors", "resources", "serving", "definitions")


def forbidden_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [
            n
            for n in names
            if n.split(".")[0] in FORBIDDEN or n.split(".")[0].startswith("dagster_")
        ]
    return found


def test_detector_finds_dagster_imports():
    assert forbidden_imports("import dagster\nfrom dagster_k8s import x\nfrom assets.ingest import y") == [
        "dagster", "dagster_k8s", "assets.ingest",
    ]  # fmt: skip
    assert forbidden_imports("import pyspark\nfrom recassets.events import EVENTS") == []


def test_library_never_imports_the_orchestration_layer():
    offenders = {
        str(p.relative_to(ROOT)): bad
        for p in (ROOT / "recassets").rglob("*.py")
        if (bad := forbidden_imports(p.read_text()))
    }
    assert offenders == {}


# Loaded by every Dagster run process, the daemon and the code server: torch alone takes about
# 11 s to import, paid again per run. Only the bodies that train or serve import them.
HEAVY = ("torch", "torchrec", "fbgemm_gpu", "faiss", "bentoml", "feast", "great_expectations")


def heavy_modules_after(statement: str) -> list[str]:
    import subprocess
    import sys

    probe = f"{statement}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = out.stdout.strip().splitlines()[-1].removeprefix("loaded:")
    return [m for m in loaded.split(",") if m]


def test_definitions_load_without_torch_or_the_serving_stack():
    assert heavy_modules_after("import definitions") == []


def test_heavy_module_probe_sees_torch_when_a_model_module_is_imported():
    # The failing case of the check above: a top-level import of the trainer pulls torch in.
    assert {"torch", "torchrec"} <= set(heavy_modules_after("import recassets.training.loop"))
