"""The spec of a sharded run: the JSON every rank reads (``python -m
recassets.training.distributed SPEC.json``), written by the local launcher
(``distributed.train_distributed``, into a private temporary folder) and by the cluster one
(``k8s_job.train_on_cluster``: a run folder on the shared volume, and a ConfigMap that
``RECASSETS_TRAIN_KEEP`` leaves for a day).

Both are plain text that others may read, so no credential goes into it: ``storage_options``
whose names look secret are refused (``check_storage_options``). The ranks read credentials
the way every other reader of the lake does, from their environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``...: the local ranks inherit the launcher's, the Job's pods get the
``recassets-object-store`` Secret).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recassets.training import data as D
from recassets.training.examples import PathsOrTable, table_path
from recassets.training.loop import RankingTrainConfig, TrainConfig, TwoTowerTrainConfig
from recassets.training.sharding import DEFAULT_ROW_WISE

# A storage option whose name holds one of these (case-insensitive) is taken for a credential:
# aws_access_key_id, aws_secret_access_key, aws_session_token, azure_storage_account_key,
# google_service_account_key, sas_token, password... Broad on purpose: a non-secret option
# caught by it (aws_sse_bucket_key_enabled) can be set through the environment as well, while
# a secret that slipped through would sit in plain text on a shared volume.
SECRET_WORDS = ("secret", "password", "token", "key")


def check_storage_options(options: Mapping[str, Any] | None) -> None:
    """Refuse ``options`` that look like credentials (``SECRET_WORDS``); the others (region,
    endpoint, allow_http...) are fine."""
    secret = sorted(k for k in options or {} if any(w in str(k).lower() for w in SECRET_WORDS))
    if secret:
        raise ValueError(
            f"storage_options {secret} look like credentials: the sharded run's spec (spec.json, "
            "and on the cluster a ConfigMap) would hold them in plain text. Pass credentials "
            "through the environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_SESSION_TOKEN: local ranks inherit it; the cluster's pods get the "
            "recassets-object-store Secret); keep only non-secret options (region, endpoint, "
            "allow_http) in storage_options"
        )


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """``config`` as JSON-able data (``device`` as a string)."""
    d = dataclasses.asdict(config)
    d["device"] = None if config.device is None else str(config.device)
    return d


def config_from_dict(d: Mapping[str, Any]) -> TrainConfig:
    d = dict(d)
    d["two_tower"] = TwoTowerTrainConfig(**d["two_tower"])
    d["ranking"] = RankingTrainConfig(**d["ranking"])
    return TrainConfig(**d)


def write_spec(
    path: str | os.PathLike[str],
    kind: str,
    table: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig,
    *,
    output: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
    row_wise: Sequence[str] = DEFAULT_ROW_WISE,
) -> str:
    """Write the JSON that the workers read (``python -m recassets.training.distributed``);
    ``storage_options`` that look like credentials are refused (``check_storage_options``)."""
    check_storage_options(storage_options)
    spec = {
        "kind": kind,
        "table": table_path(table),
        "partitions": D.normalize_partitions(partitions),
        "config": config_to_dict(config),
        "output": str(output),
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "full_retrain": bool(full_retrain),
        "storage_options": dict(storage_options) if storage_options else None,
        "version": version,
        "row_wise": list(row_wise),
    }
    Path(path).write_text(json.dumps(spec, indent=1))
    return str(path)


__all__ = [
    "SECRET_WORDS",
    "check_storage_options",
    "config_from_dict",
    "config_to_dict",
    "write_spec",
]
