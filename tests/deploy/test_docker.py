"""deploy/docker/: the user-code Dockerfile read as Docker reads it, and the CPU lock filter.

No container engine runs here: these are the checks that do not need one. The Dockerfile is
split into instructions (continuations joined, comments dropped) and checked: every COPY source
exists in the build context (the repo root) and is let through Dockerfile.dockerignore, the last
USER is a numeric non-root UID, the VARIANT build argument defaults to cpu and both variants are
built, the base image carries the Python of pyproject.toml, uv is the Makefile's; and what
deploy/ and docs/deploy.md say the image is built with is one of its build arguments.
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
# Files the code reads at run time by their place in the repository (Path(__file__).parents[2]
# / ...): each must be copied to that same path under the image's WORKDIR. The image once
# lacked deploy/serving.lock, and every recommender_bento on the cluster failed.
READ_BESIDE_THE_PACKAGE = (
    "deploy/serving.lock",  # recassets/bento/bundle.py: the bento's requirements
    "overrides.txt",  # the same: the bento's uv overrides (its env/python/overrides.txt)
    "deploy/docker/cpu-lock.sh",  # the same, RECASSETS_BENTO_TORCH=cpu
    "deploy/k8s/training-job.yaml",  # recassets/training/k8s_job.py
    "deploy/spark",  # SPARK_CONF_DIR of values-spark-k8s.yaml
)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comment lines dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continuation"
    return out


def build_args(instrs: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for word, rest in instrs:
        if word == "ARG":
            name, _, default = rest.partition("=")
            found[name.strip()] = default.strip()
    return found


def allowed_by_dockerignore(path: str, ignore: str) -> bool:
    """Whether ``path`` (repo-relative) is let through an ignore file of the form this repo
    uses: ``**`` first, then ``!path`` exceptions."""
    allowed = False
    for raw in ignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "**":
            allowed = False
        elif line.startswith("!"):
            keep = line[1:].rstrip("/")
            if path.rstrip("/") == keep or path.startswith(keep + "/"):
                allowed = True
    return allowed


def problems(text: str, context: Path, ignore: str) -> list[str]:
    instrs = instructions(text)
    args = build_args(instrs)
    found: list[str] = []

    froms = [rest for word, rest in instrs if word == "FROM"]
    if not froms:
        found.append("no FROM")
    base = args.get("PYTHON_IMAGE", "") if froms and froms[0] == "${PYTHON_IMAGE}" else ""
    base = base or (froms[0] if froms else "")
    if not re.match(r"python:3\.11-slim", base):
        found.append(f"base image {base!r} is not python:3.11-slim*")

    for word, rest in instrs:
        if word not in ("COPY", "ADD"):
            continue
        parts = [p for p in rest.split() if not p.startswith("--")]
        if any(p.startswith("--from") for p in rest.split()):
            continue
        for src in parts[:-1]:
            if not (context / src).exists():
                found.append(f"COPY source {src} does not exist in the build context")
            elif not allowed_by_dockerignore(src, ignore):
                found.append(f"COPY source {src} is excluded by Dockerfile.dockerignore")

    copied = set()
    for word, rest in instrs:
        parts = [p for p in rest.split() if not p.startswith("--")]
        if word == "COPY" and len(parts) == 2 and parts[0].rstrip("/") == parts[1].rstrip("/"):
            copied.add(parts[0].rstrip("/"))
        elif word == "COPY" and len(parts) >= 2 and parts[-1] in ("./", "."):  # into WORKDIR
            copied |= {p.rstrip("/") for p in parts[:-1] if "/" not in p.rstrip("/")}
    for path in READ_BESIDE_THE_PACKAGE:
        if not any(path == c or path.startswith(c + "/") for c in copied):
            found.append(f"{path} is not copied to the same path beside the package")

    users = [rest for word, rest in instrs if word == "USER"]
    if not users:
        found.append("no USER: the image runs as root")
    else:
        user = users[-1].split(":")[0]
        match = re.fullmatch(r"\$\{?(\w+)\}?", user)
        if match:
            user = args.get(match.group(1), "")
        if not user.isdigit():
            found.append(f"USER {users[-1]!r} is not a numeric UID (runAsNonRoot cannot check it)")
        elif int(user) == 0:
            found.append("USER is root")

    if args.get("VARIANT") != "cpu":
        found.append("ARG VARIANT must default to cpu")
    runs = " ".join(rest for word, rest in instrs if word == "RUN")
    for variant in ("cpu", "cuda"):
        if f'"$VARIANT" = {variant}' not in runs:
            found.append(f"no RUN branch for VARIANT={variant}")
    if "download.pytorch.org/whl/cpu" not in runs:
        found.append("the cpu variant does not install torch from PyTorch's CPU index")
    envs = " ".join(rest for word, rest in instrs if word == "ENV")
    for var in ("DAGSTER_HOME=", "JAVA_HOME="):
        if var not in envs:
            found.append(f"no ENV {var.rstrip('=')}")
    if "openjdk-17-jre" not in runs:
        found.append("no Java 17 runtime installed")
    return found


def test_user_code_dockerfile_passes() -> None:
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    assert problems(DOCKERFILE.read_text(), REPO, ignore) == []


def test_uv_is_the_makefiles() -> None:
    pinned = re.search(r"uv==([\d.]+)", (REPO / "Makefile").read_text())
    assert pinned is not None
    assert build_args(instructions(DOCKERFILE.read_text()))["UV_VERSION"] == pinned.group(1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("COPY sensors/ sensors/", "COPY sensorz/ sensors/", "sensorz/ does not exist"),
        ("COPY serving/ serving/", "COPY tests/ tests/", "tests/ is excluded"),
        ("USER ${UID}", "USER root", "not a numeric UID"),
        ("ARG UID=10001", "ARG UID=0", "USER is root"),
        ("ARG VARIANT=cpu", "ARG VARIANT=cuda", "default to cpu"),
        ('elif [ "$VARIANT" = cuda ]', 'elif [ "$VARIANT" = gpu ]', "VARIANT=cuda"),
        ("python:3.11-slim-bookworm", "python:3.12-slim-bookworm", "not python:3.11-slim"),
        ("openjdk-17-jre-headless", "openjdk-21-jre-headless", "Java 17"),
        ("COPY deploy/serving.lock deploy/serving.lock", "", "serving.lock is not copied"),
        (
            "COPY requirements.lock overrides.txt ./",
            "COPY requirements.lock ./",
            "overrides.txt is not copied",
        ),
    ],
)
def test_a_broken_dockerfile_is_refused(old: str, new: str, expected: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    found = problems(text.replace(old, new), REPO, ignore)
    assert any(expected in p for p in found), found


def test_no_user_line_is_refused() -> None:
    text = "\n".join(
        line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("USER")
    )
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    assert "no USER: the image runs as root" in problems(text, REPO, ignore)


# --- what the image is said to be built with ------------------------------------------------

# deploy/ and its chapter: the training Job's image was "built with GPU=1", the Makefile's
# variable, which `docker build --build-arg GPU=1` ignores (it built the CPU image).
BUILD_TEXTS = [
    *(REPO / "deploy").rglob("*.yaml"),
    *DOCKER.glob("Dockerfile*"),
    REPO / "docs" / "deploy.md",
]


def build_arg_problems(texts: dict[str, str], dockerfile: str) -> list[str]:
    """Mentions of the user-code image's build (``built with X=Y``, ``--build-arg X=Y``) whose
    X is not an ARG of the Dockerfile, or whose VARIANT is not one it builds."""
    args = build_args(instructions(dockerfile))
    variants = set(re.findall(r'"\$VARIANT" = (\w+)', dockerfile))
    found = []
    for name, text in texts.items():
        for m in re.finditer(r"(?:built with|--build-arg)[\s`]+([A-Z_]+)=([\w.-]+)", text):
            arg, value = m[1], m[2]
            if arg not in args:
                found.append(f"{name}: {m[0]!r}: {arg} is no build argument of the Dockerfile")
            elif arg == "VARIANT" and value not in variants:
                found.append(f"{name}: {m[0]!r}: VARIANT is {sorted(variants)}")
    return found


def test_the_build_mentions_are_build_arguments() -> None:
    dockerfile = DOCKERFILE.read_text()
    texts = {str(p.relative_to(REPO)): p.read_text() for p in BUILD_TEXTS}
    assert any("--build-arg VARIANT=cuda" in t for t in texts.values())
    assert build_arg_problems(texts, dockerfile) == []
    # the finding: the training Job's image "built with GPU=1"
    wrong = {"training-job.yaml": "image: X # the user-code image, built with GPU=1"}
    assert build_arg_problems(wrong, dockerfile) == [
        "training-job.yaml: 'built with GPU=1': GPU is no build argument of the Dockerfile"
    ]
    assert build_arg_problems({"d": "--build-arg VARIANT=gpu"}, dockerfile) != []


# --- the CPU lock ---------------------------------------------------------------------------


def lock_graph(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """pins (name -> line) and, for each package, who requires it (its ``# via`` list)."""
    pins: dict[str, str] = {}
    via: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            current = match.group(1).lower()
            pins[current] = line.strip()
            via[current] = set()
        elif current and (match := re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9_.\-]+)", line)):
            if match.group(1) != "via":
                via[current].add(match.group(1).lower())
    return pins, via


def cpu_lock(lock: Path) -> str:
    done = subprocess.run(
        ["sh", str(DOCKER / "cpu-lock.sh"), str(lock)], capture_output=True, text=True, check=True
    )
    return done.stdout


def dropped_but_needed(lock_text: str, cpu_text: str) -> list[str]:
    """Packages cpu-lock.sh dropped that a kept package (or the project) still requires."""
    pins, via = lock_graph(lock_text)
    kept = {line.split("==")[0].lower() for line in cpu_text.splitlines() if "==" in line}
    dropped = set(pins) - kept
    return sorted(
        f"{name} (via {', '.join(sorted(via[name] & (kept | {'recassets'})))})"
        for name in dropped
        if via[name] & (kept - {"torch"} | {"recassets"})
    )


def test_cpu_lock_drops_only_what_the_cuda_torch_needs() -> None:
    lock = REPO / "requirements.lock"
    text = cpu_lock(lock)
    assert re.search(r"^torch==[\d.]+\+cpu$", text, re.M)
    assert "nvidia-ml-py==" in text  # bentoml's
    assert not re.search(r"^(triton|nvidia-cu|cuda-)", text, re.M)
    assert dropped_but_needed(lock.read_text(), text) == []


def test_cpu_lock_filter_that_drops_a_needed_package_is_caught(tmp_path: Path) -> None:
    lock = (REPO / "requirements.lock").read_text()
    # nvidia-ml-py is bentoml's: a filter that forgot to keep it must be caught.
    broken = "\n".join(line for line in cpu_lock(REPO / "requirements.lock").splitlines())
    broken = re.sub(r"^nvidia-ml-py==.*$", "", broken, flags=re.M)
    assert any(p.startswith("nvidia-ml-py") for p in dropped_but_needed(lock, broken))


def test_cpu_lock_fails_without_a_torch_pin(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.2.6\n")
    done = subprocess.run(["sh", str(DOCKER / "cpu-lock.sh"), str(lock)], capture_output=True)
    assert done.returncode != 0
