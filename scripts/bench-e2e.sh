#!/usr/bin/env bash
# End-to-end benchmark: the LASER way in PyTorch + HF transformers vs `laser eval`, and
# `laser search --strategy exhaustive` vs `laser adapt`, on the default model and bundled task.
# Writes the medians and ratios into docs/BENCHMARKS.md (between the e2e markers) and the raw
# runs into laser-out/bench-e2e/raw.json. Takes ~25 min on 2 cores with the defaults.
#
# Usage: scripts/bench-e2e.sh [--runs R] [--heavy-runs H] [--layers A-B] [--rho LIST] [--threads T]
#                             [--parts abcd]   (rerun only some parts; the rest come from raw.json)
#
# The PyTorch reference is dev-only: it is installed on first use into a virtual environment
# ($LASER_BENCH_VENV, default .cache/bench-venv) with pip, pinned below. PyPI's torch wheel for
# Linux brings CUDA libraries (~5.6 GB installed); nothing of it is a dependency of the crates.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${LASER_BENCH_VENV:-$root/.cache/bench-venv}"
pins=(torch==2.15.0 transformers==5.24.0 gguf==0.19.0 accelerate==1.15.0)
py=$(command -v python3 || true)
if [ -z "$py" ]; then echo "error: the PyTorch reference needs python3 with pip" >&2; exit 2; fi
if ! "$venv/bin/python" -c "import torch, transformers, gguf, accelerate" 2>/dev/null; then
  echo "[bench-e2e] installing the PyTorch reference into $venv (${pins[*]})" >&2
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
model=$(scripts/fetch-smollm2.sh)
echo "[bench-e2e] building laser (release)" >&2
cargo build --release --quiet -p laser-cli
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$venv/bin/python" benches/e2e/run.py \
  --laser "$target/release/laser" --python "$venv/bin/python" \
  --model "$model" --task data/epistemic_reasoning_300.json \
  --work laser-out/bench-e2e --doc docs/BENCHMARKS.md "$@"
