"""An S3 API server on the loopback for the s3a:// lake: moto's server mode (``moto_server``,
the dev dependency ``moto[server]``) in its own process group, a boto3 client of it, and the
settings a user gives to put the lake there. Shared by ``tests/integration/test_s3_lake.py``
and ``benchmarks/scale_s3.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from support.ports import free_port, wait_listening

# moto accepts any key pair; these are its documented placeholders, not secrets.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
STARTUP_S = 60


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    """``moto_server`` on a free loopback port, in its own process group (stop it with
    ``recassets.process.stop_process_group``), and its endpoint URL once it answers. Started
    under ``env --default-signal=INT,TERM``: background servers here may ignore both."""
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    with log.open("wb") as f:
        proc = subprocess.Popen(
            ["env", "--default-signal=INT,TERM", str(moto), "-H", "127.0.0.1", "-p", str(port)],
            stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    wait_listening(proc, port, log, "moto_server", STARTUP_S)
    return proc, f"http://127.0.0.1:{port}"


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of the server at ``endpoint``."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_lake_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The settings that put the lake in ``bucket`` on the server at ``endpoint``; nothing
    else changes (docs/deploy.md, "A lake on an S3 API")."""
    return {
        "RECASSETS_LAKE": f"s3a://{bucket}/lake",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",  # delta-rs refuses a plain-http endpoint otherwise
        **CREDENTIALS,
    }
