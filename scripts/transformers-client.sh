#!/usr/bin/env bash
# Checks GGUF out with HF transformers' own GGUF loader as an outside client: installs torch,
# transformers and gguf (pinned as in scripts/bench-e2e.sh; PyPI's torch wheel brings CUDA
# libraries, ~5.6 GB installed) into a separate virtual environment, installs the laser-rs
# Python package there, and runs bindings/python/tests/test_transformers_client.py: SmolLM2
# (llama, Q4_1, a q_proj edit in F16) and Gemma 3 270M (Q4_K_M, written `same`) exported with
# `--export gguf`, loaded by transformers, logits against laser's. Dev-only, not in .ci/run (the
# install is too large for CI); the default pytest run skips that file, saying why.
#
# Usage: scripts/transformers-client.sh [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${LASER_BENCH_VENV:-$root/.cache/bench-venv}"
pins=(torch==2.15.0 transformers==5.24.0 gguf==0.19.0 accelerate==1.15.0)
if ! "$venv/bin/python" -c "import torch, transformers, gguf" 2>/dev/null; then
  echo "[transformers-client] installing ${pins[*]} into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
LASER_PY_VENV="$venv" LASER_PY_TESTS=tests/test_transformers_client.py \
  exec bash scripts/python-tests.sh "$@"
