"""All four serving benchmarks in turn, each in its own process (a fresh interpreter: thread
settings and loaded models do not carry from one to the next):

- ``benchmarks.serve_http``: ``/recommend`` over HTTP against BentoML's constant-response floor;
- ``benchmarks.serve_ranking``: broadcast ranking against replicated, pinned threads against
  the default, in process;
- ``benchmarks.serve_stages``: CPU time per request of each funnel stage at N = 2,000 and
  20,000 candidates, and the ranker's GFLOP/s against a one-thread matmul peak, in process;
- ``benchmarks.serve_index``: the FAISS index against exact search on synthetic vectors.

    .venv/bin/python -m benchmarks.serve                       # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.serve --home /tmp/srv/home --quick

``--home`` and ``--bento`` go to the three that need a built bento, ``--quick`` to all four;
for any other option run the script itself (each documents its own, ``--help``). Each prints
its figures beside a baseline measured in its own run. The exit status is the first non-zero
one (2: the home has no bento), after all four have run.
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
    ap.add_argument("--quick", action="store_true", help="each script's smoke size")
    a = ap.parse_args()
    home = [*(["--home", a.home] if a.home else []), *(["--bento", a.bento] if a.bento else [])]
    quick = ["--quick"] if a.quick else []
    status = 0
    chain = (
        ("serve_http", home),
        ("serve_ranking", home),
        ("serve_stages", home),
        ("serve_index", []),
    )
    for name, args in chain:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        code = subprocess.call(
            [sys.executable, "-m", f"benchmarks.{name}", *args, *quick], cwd=ROOT
        )
        status = status or code
    sys.exit(status)


if __name__ == "__main__":
    main()
