"""The training steps' settings from the environment, parsed without loading torch.

``distributed`` (local ranks) and ``k8s_job`` (a Kubernetes Job) read them when a run trains,
and re-export them; ``check`` parses them all when the code location loads
(``recassets.run_settings.check``), so a bad value stops the location naming its variable
instead of failing the training step. Blank means unset (the default) for each.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recassets.run_settings import env_int
from recassets.training.schema import ITEM_SPARSE, USER_SPARSE

# --- local ranks (recassets.training.distributed) --------------------------------------------

ENV_PROCESSES = "RECASSETS_TRAIN_PROCESSES"  # > 1: the training asset trains sharded
ENV_ROW_WISE = "RECASSETS_TRAIN_ROW_WISE"  # comma-separated tables split by rows
# The tables split by rows unless configured otherwise: item ids are the largest table and the
# one every step touches most (candidates and the history bag); the rest go whole to one rank.
DEFAULT_ROW_WISE = ("item_id",)
# The embedding tables, one per sparse feature's vocabulary (training.data.VOCABS: the history
# bag shares item_id's); ``none`` (ROW_WISE_NONE) splits no table by rows.
TABLES = USER_SPARSE + ITEM_SPARSE
ROW_WISE_NONE = "none"


def processes_from_env(env: Mapping[str, str] | None = None) -> int:
    """``RECASSETS_TRAIN_PROCESSES`` (default 1: the single-process loop; bounded by
    ``run_settings.MAXIMA``)."""
    return env_int(ENV_PROCESSES, 1, minimum=1, env=os.environ if env is None else env)


def row_wise_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``RECASSETS_TRAIN_ROW_WISE``: the tables split by rows, comma-separated (blank: the
    default ``item_id``; ``none``: no table). A name that is no table is refused here: the
    planner refused it only once the ranks had started."""
    raw = ((os.environ if env is None else env).get(ENV_ROW_WISE) or "").strip()
    if not raw:
        return DEFAULT_ROW_WISE
    if raw.lower() == ROW_WISE_NONE:
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    unknown = [t for t in names if t not in TABLES]
    if unknown or not names:
        what = f"{', '.join(map(repr, unknown))} is no embedding table" if unknown else "no table"
        raise ValueError(
            f"{ENV_ROW_WISE}={raw[:80]!r}: {what} (have {', '.join(TABLES)}; or {ROW_WISE_NONE})"
        )
    return names


# --- the cluster launcher (recassets.training.k8s_job) ---------------------------------------

ENV_LAUNCHER = "RECASSETS_TRAIN_LAUNCHER"  # local (default) | k8s
ENV_IMAGE = "RECASSETS_TRAIN_IMAGE"
ENV_NAMESPACE = "RECASSETS_TRAIN_NAMESPACE"
ENV_NODES = "RECASSETS_TRAIN_NODES"
ENV_KEEP = "RECASSETS_TRAIN_KEEP"
ENV_TEMPLATE = "RECASSETS_TRAIN_TEMPLATE"
LAUNCHERS = ("local", "k8s")
KEEP_VALUES = ("", "0", "1", "false", "true")

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "training-job.yaml"
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "recassets"
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # RFC 1035: Service and Job names


@dataclass(frozen=True)
class ClusterSettings:
    image: str
    namespace: str = DEFAULT_NAMESPACE
    nodes: int = 2
    keep: bool = False
    template: Path = TEMPLATE


def launcher_from_env(env: Mapping[str, str] | None = None) -> str:
    """``RECASSETS_TRAIN_LAUNCHER``: ``local`` (default) or ``k8s``."""
    raw = (os.environ if env is None else env).get(ENV_LAUNCHER, "").strip().lower()
    if not raw:
        return "local"
    if raw not in LAUNCHERS:
        raise ValueError(f"{ENV_LAUNCHER} must be one of {', '.join(LAUNCHERS)}, got {raw!r}")
    return raw


def template_objects(path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    """The training Job manifest's objects, by kind (a Service, a ConfigMap and a Job)."""
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    if sorted(by_kind) != ["ConfigMap", "Job", "Service"] or len(docs) != 3:
        raise ValueError(
            f"{path}: expected a Service, a ConfigMap and a Job, got {sorted(by_kind)}"
        )
    return by_kind


def nodes_from_env(env: Mapping[str, str]) -> int | None:
    """``RECASSETS_TRAIN_NODES``: pods of the Job, 1 or more (bounded by ``MAXIMA``); None
    when unset (the manifest's count)."""
    return env_int(ENV_NODES, 0, minimum=1, env=env) or None


def keep_from_env(env: Mapping[str, str]) -> bool:
    """``RECASSETS_TRAIN_KEEP``: ``1``/``true`` keeps the Job's objects, ``0``/``false`` (default)."""
    raw = env.get(ENV_KEEP, "").strip().lower()
    if raw not in KEEP_VALUES:
        raise ValueError(f"{ENV_KEEP} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true")


def settings_from_env(env: Mapping[str, str] | None = None) -> ClusterSettings:
    """The cluster launch's settings from the environment (``k8s_job``'s docstring)."""
    e = os.environ if env is None else env
    image = e.get(ENV_IMAGE, "").strip()
    if not image or any(c.isspace() for c in image):
        raise ValueError(f"{ENV_IMAGE} must name the trainer's image, got {image!r}")
    namespace = e.get(ENV_NAMESPACE, "").strip()
    if not namespace:
        in_cluster = bool(e.get("KUBERNETES_SERVICE_HOST")) and SA_NAMESPACE.is_file()
        namespace = SA_NAMESPACE.read_text().strip() if in_cluster else DEFAULT_NAMESPACE
    if not DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise ValueError(f"{ENV_NAMESPACE} must be a namespace name, got {namespace!r}")
    template = Path(e.get(ENV_TEMPLATE, "").strip() or TEMPLATE)
    if not template.is_file():
        raise ValueError(f"{ENV_TEMPLATE}: no training Job manifest at {template}")
    nodes = nodes_from_env(e)
    if nodes is None:
        nodes = int(template_objects(template)["Job"]["spec"]["completions"])
    return ClusterSettings(image, namespace, nodes, keep_from_env(e), template)


def check(env: Mapping[str, str]) -> None:
    """Parse every training setting of ``env`` as the training step will: the ranks, the tables
    split by rows, the launcher, and with ``k8s`` the cluster's (image, namespace, manifest).
    ``RECASSETS_TRAIN_NODES`` and ``_KEEP`` are parsed whatever the launcher."""
    processes_from_env(env)
    row_wise_from_env(env)
    nodes_from_env(env)
    keep_from_env(env)
    if launcher_from_env(env) == "k8s":
        settings_from_env(env)


__all__ = [
    "DEFAULT_ROW_WISE",
    "ENV_IMAGE",
    "ENV_KEEP",
    "ENV_LAUNCHER",
    "ENV_NAMESPACE",
    "ENV_NODES",
    "ENV_PROCESSES",
    "ENV_ROW_WISE",
    "ENV_TEMPLATE",
    "TABLES",
    "ClusterSettings",
    "check",
    "launcher_from_env",
    "processes_from_env",
    "row_wise_from_env",
    "settings_from_env",
]
