#!/bin/sh
# The lock for a CPU image: requirements.lock less the CUDA build of torch and what only it pulls
# in (triton, cuda-*, nvidia-* wheels: about 3 GB), plus torch's CPU build from PyTorch's CPU
# index (the Dockerfile passes --extra-index-url for it). nvidia-ml-py stays: it is bentoml's
# NVML binding (no CUDA in it). tests/deploy/test_docker.py checks against the lock's `# via`
# graph that nothing dropped here is needed by anything kept.
#   usage: cpu-lock.sh requirements.lock > cpu.lock
set -eu
lock="$1"
torch=$(sed -n 's/^torch==//p' "$lock")
[ -n "$torch" ] || { echo "cpu-lock.sh: no torch pin in $lock" >&2; exit 1; }
grep -vE '^(torch|triton|cuda-[a-z-]+|nvidia-[a-z0-9-]+)==' "$lock"
grep -E '^nvidia-ml-py==' "$lock"
echo "torch==${torch}+cpu"
