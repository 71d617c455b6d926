"""deploy/serving.lock: what the bento installs, and nothing it does not import.

The serving lock is ``uv pip compile deploy/serving.in -c requirements.lock`` (``make lock``):
no pyspark, Dagster, Great Expectations or Feast, and every pin the pin of requirements.lock,
so the bento runs the versions the tests and the pipeline run. Checked here: none of the
excluded packages, no pin that drifts from (or is missing in) requirements.lock, the lock is
what ``make lock`` writes today (a fresh offline compile gives the same pins). Each check has a
case that breaks it. That the bento carries this lock and that it is enough to serve one is
tests/deploy/test_serving_venv.py.
"""

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MAIN_LOCK = REPO / "requirements.lock"
SERVING_IN = REPO / "deploy" / "serving.in"
SERVING_LOCK = REPO / "deploy" / "serving.lock"
UV = REPO / ".venv" / "bin" / "uv"

# Distributions serving must never install (prefixes: dagster-k8s, dagster-postgres, ...).
EXCLUDED = ("pyspark", "delta-spark", "dagster", "great-expectations", "feast")


def normalize(name: str) -> str:
    """PEP 503: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """name -> version of the ``name==version`` lines of a lock (comments ignored)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==(\S+)", line):
            found[normalize(match.group(1))] = match.group(2)
    return found


def requirement_names(text: str) -> set[str]:
    """The names a requirements input lists (comments and blank lines dropped)."""
    names = set()
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if line:
            names.add(normalize(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]))
    return names


def problems(serving: str, main: str, wanted: set[str]) -> list[str]:
    """What is wrong with the serving lock ``serving`` against the main lock ``main`` and the
    names ``wanted`` of deploy/serving.in."""
    found: list[str] = []
    have, reference = pins(serving), pins(main)
    if len(have) < len(wanted):
        found.append(f"only {len(have)} pins for {len(wanted)} requirements")
    for name, version in sorted(have.items()):
        if any(name == x or name.startswith(x + "-") for x in EXCLUDED):
            found.append(f"{name}=={version}: serving does not import it")
        if name not in reference:
            found.append(f"{name}=={version}: not in requirements.lock")
        elif reference[name] != version:
            found.append(f"{name}=={version}: requirements.lock pins {reference[name]}")
    for name in sorted(wanted - set(have)):
        found.append(f"{name}: in deploy/serving.in but not pinned")
    return found


def test_the_serving_lock_holds_only_serving_and_the_main_locks_pins() -> None:
    serving = SERVING_LOCK.read_text()
    assert problems(serving, MAIN_LOCK.read_text(), requirement_names(SERVING_IN.read_text())) == []
    have = pins(serving)
    # what serving imports is there (the venv test starts the bento from it) ...
    for name in ("bentoml", "torch", "torchrec", "fbgemm-gpu-cpu", "faiss-cpu", "redis"):
        assert name in have, name
    # ... the CUDA fbgemm stays out as in the main lock (overrides.txt) ...
    assert "fbgemm-gpu" not in have
    # ... and it is a fraction of the main lock
    assert len(have) < len(pins(MAIN_LOCK.read_text())) / 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t + "pyspark==4.2.0\n", "pyspark==4.2.0: serving does not import it"),
        (lambda t: t + "dagster-k8s==0.29.27\n", "dagster-k8s==0.29.27: serving does not"),
        (lambda t: t + "great_expectations==1.24.1\n", "great-expectations==1.24.1: serving"),
        (lambda t: re.sub(r"^torch==\S+", "torch==2.13.0", t, flags=re.M), "torch==2.13.0: "),
        (lambda t: t + "left-pad==1.0\n", "left-pad==1.0: not in requirements.lock"),
        (lambda t: re.sub(r"^redis==\S+\n", "", t, flags=re.M), "redis: in deploy/serving.in"),
    ],
    ids=["pyspark", "dagster", "great-expectations", "drift", "unknown", "missing"],
)
def test_a_broken_serving_lock_is_refused(edit: Callable[[Any], Any], expected: str) -> None:
    broken = edit(SERVING_LOCK.read_text())
    found = problems(broken, MAIN_LOCK.read_text(), requirement_names(SERVING_IN.read_text()))
    assert any(expected in p for p in found), found


def compile_serving(out: Path, serving_in: Path = SERVING_IN) -> subprocess.CompletedProcess[str]:
    """``make lock``'s serving line, offline (uv's cache), into ``out``."""
    return subprocess.run(
        [str(UV), "pip", "compile", "-q", str(serving_in), "-c", str(MAIN_LOCK),
         "--override", str(REPO / "overrides.txt"), "--python-version", "3.11",
         "--offline", "-o", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip


def test_the_serving_lock_is_what_make_lock_writes(tmp_path: Path) -> None:
    """A fresh compile of deploy/serving.in gives the committed pins: the lock is not stale
    against serving.in or requirements.lock."""
    assert "-c requirements.lock" in SERVING_LOCK.read_text().splitlines()[1]
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make install` first")
    done = compile_serving(tmp_path / "serving.lock")
    if done.returncode != 0:
        pytest.skip(
            f"uv cannot resolve offline (a package's metadata is not cached):\n{done.stderr}"
        )
    assert pins((tmp_path / "serving.lock").read_text()) == pins(SERVING_LOCK.read_text())


def test_a_stale_serving_lock_is_caught(tmp_path: Path) -> None:
    """serving.in gains a requirement the committed lock lacks: the fresh compile differs."""
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make install` first")
    serving_in = tmp_path / "serving.in"
    serving_in.write_text(SERVING_IN.read_text() + "requests\n")
    done = compile_serving(tmp_path / "serving.lock", serving_in)
    if done.returncode != 0:
        pytest.skip(
            f"uv cannot resolve offline (a package's metadata is not cached):\n{done.stderr}"
        )
    fresh = pins((tmp_path / "serving.lock").read_text())
    assert fresh != pins(SERVING_LOCK.read_text())
    assert fresh["requests"] == pins(MAIN_LOCK.read_text())["requests"]  # still the main pin


# --- the CPU serving image (RECASSETS_BENTO_TORCH=cpu) ------------------------------------------

CUDA_ONLY = re.compile(r"^(torch|triton|cuda-[a-z-]+|nvidia-[a-z0-9-]+)$")


def test_the_bentos_torch_variant_is_read_from_the_environment_and_checked() -> None:
    from recassets.bento import bundle as B

    assert B.torch_variant({}) == "pypi" and B.torch_variant({B.TORCH_ENV: " CPU "}) == "cpu"
    with pytest.raises(ValueError, match=f"{B.TORCH_ENV}='gpu'"):
        B.torch_variant({B.TORCH_ENV: "gpu"})


def built(make_home: Callable[[str], Any], variant: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real ``bentoml build`` (an empty home's popularity bundle) with the variant set;
    the bento's folder."""
    from recassets.bento import bundle as B

    paths = make_home(f"bento-{variant}")
    monkeypatch.setenv(B.TORCH_ENV, variant)
    with B.staged_bundle(paths) as folder:
        tag = B.build_bento(paths, folder, version=f"20260101t000000-{variant}")
    return B.bento_folder(paths, tag)


def test_a_cpu_bento_installs_torchs_cpu_build_and_none_of_the_cuda_wheels(
    make_home: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``bentoml containerize`` builds from: the bento's requirements and the Dockerfile
    BentoML generated into it (no container engine here to run it). The CPU bento pins torch's
    CPU build, drops exactly the CUDA-only wheels, and its image sets torch's CPU index for uv
    before the install step; the default bento is the serving lock as it is (the failing case
    of each check)."""
    from recassets.bento import bundle as B

    lock = pins(SERVING_LOCK.read_text())
    for variant in ("cpu", "pypi"):
        bento = built(make_home, variant, monkeypatch)
        got = pins((bento / "env" / "python" / "requirements.txt").read_text())
        dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
        # the step that installs the requirements (BentoML's newer template runs uv on them,
        # the older one env/python/install.sh)
        install = re.search(r"pip install -r \S*requirements\.txt|install\.sh", dockerfile)
        assert install is not None, dockerfile
        before = dockerfile[: install.start()]
        if variant == "cpu":
            assert got["torch"] == lock["torch"] + "+cpu"
            dropped = {n for n in lock if n not in got}
            assert dropped and all(CUDA_ONLY.match(n) for n in dropped), dropped
            assert "nvidia-ml-py" in got  # bentoml's NVML binding, no CUDA in it
            assert {n: v for n, v in got.items() if n != "torch"} == {
                n: v for n, v in lock.items() if n not in dropped and n != "torch"
            }
            assert f"UV_EXTRA_INDEX_URL={B.TORCH_CPU_INDEX}" in before, before
            assert "UV_INDEX_STRATEGY=unsafe-best-match" in before, before
        else:
            assert got == lock
            assert "UV_EXTRA_INDEX_URL" not in dockerfile and "+cpu" not in dockerfile
