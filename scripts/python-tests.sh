#!/usr/bin/env bash
# Builds and installs the Python package (bindings/python) into a virtual environment beside the
# cargo target folder, then runs its pytest tests. What it fetches comes from PyPI (maturin,
# numpy, pytest, llama.cpp's GGUF reader `gguf` and `safetensors` for the export tests); where PyPI cannot be
# reached and they are not installed, it says so and skips.
#
#   bash scripts/python-tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/laser-rs/target}"
venv="${LASER_PY_VENV:-$CARGO_TARGET_DIR/python-venv}"
# The default model is cached where the Rust tests keep it (fetched there on first use).
export LASER_CACHE="${LASER_CACHE:-$PWD/.cache}"
if ! command -v python3 >/dev/null; then
    echo "skipped the Python package tests: no python3 on this machine" >&2
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
if ! "$py" -c "import maturin, numpy, pytest, gguf, safetensors" 2>/dev/null; then
    if ! "$py" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2" numpy pytest gguf safetensors; then
        echo "skipped the Python package tests: maturin, numpy, pytest, gguf and safetensors are not installed and PyPI cannot be reached" >&2
        exit 0
    fi
fi
start=$(date +%s)
# No build isolation: the environment's maturin builds, nothing is fetched for the build itself.
# Its build backend runs the `maturin` command from PATH, which on a fresh machine is only in the
# environment's bin folder.
export PATH="$venv/bin:$PATH"
"$py" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./bindings/python
echo "built and installed the Python package in $(( $(date +%s) - start )) s"
cd bindings/python
# LASER_PY_TESTS: which test files (default: all of tests/).
"$py" -m pytest -q ${LASER_PY_TESTS:-tests} "$@"
