"""The scale-out overheads, each pair in its own process (a fresh interpreter: a Spark Connect
client, a process group of ranks or a Redis cache do not carry from one to the next):

- ``benchmarks.scale_training``: training examples per second and the loss with 1 and with 2
  CPU ranks (TorchRec ``DistributedModelParallel``) against the single-process loop, on the
  same planted data;
- ``benchmarks.scale_embeddings``: ``/recommend`` with the models' embedding rows in the
  process against the same rows in Redis through a bounded cache (latency, hit rate), on the
  home's bento under a Zipf-like user mix;
- ``benchmarks.scale_s3``: one day ingested into a local lake against the same day into an
  ``s3a://`` lake on an S3 API server on the loopback (moto), same session, same files;
- ``benchmarks.scale_connect``: one day ingested and its feature tables built through a local
  Spark session against a Spark Connect server, same files, alternating.

These are overheads to know, not targets: each script prints its figures beside its same-run
baseline.

    .venv/bin/python -m benchmarks.scale                     # RECASSETS_HOME's bento for the second
    .venv/bin/python -m benchmarks.scale --home /tmp/home
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", default=None, help="RECASSETS_HOME (default: env, else .recassets)")
    ap.add_argument("--bento", default=None, help="bento tag (default: the newest in the home)")
    a = ap.parse_args()
    home = [*(["--home", a.home] if a.home else []), *(["--bento", a.bento] if a.bento else [])]
    status = 0
    for name, args in (
        ("scale_training", []),
        ("scale_embeddings", home),
        ("scale_s3", []),
        ("scale_connect", []),
    ):
        print(f"\n=== benchmarks.{name} ===", flush=True)
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT)
        status = status or code
    sys.exit(status)


if __name__ == "__main__":
    main()
