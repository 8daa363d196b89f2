#!/usr/bin/env bash
# `laser adapt` with no flags (the default model, or BENCH_MODEL's; the bundled task) under each
# binary given, back to back on one machine: the side-by-side of old and new defaults in
# docs/BENCHMARKS.md ("The new defaults, side by side"). Prints, per binary, its summary's time
# line, wall time and peak RSS.
#
#   scripts/bench-adapt-defaults.sh OLD_LASER NEW_LASER [MORE_LASER...]
#   (BENCH_DIR: the working folder, default bench-adapt-defaults; BENCH_MODEL: a `--model` for
#   every binary, e.g. a Gemma 3 GGUF, default none: the default model)
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OLD_LASER NEW_LASER [MORE_LASER...]" >&2
  exit 2
fi
dir=${BENCH_DIR:-bench-adapt-defaults}
mkdir -p "$dir"
model=()
if [ -n "${BENCH_MODEL:-}" ]; then
  model=(--model "$BENCH_MODEL")
fi
for bin in "$@"; do
  tag=$(basename "$bin")
  rm -rf "$dir/adapt-$tag"
  /usr/bin/time -v "$bin" adapt "${model[@]}" --out "$dir/adapt-$tag" > "$dir/$tag.txt" 2> "$dir/$tag.time"
  echo "$tag: $(grep -E '^[0-9]+ candidates' "$dir/$tag.txt")"
  echo "  $(grep -E 'Elapsed|Maximum resident' "$dir/$tag.time" | tr -s ' \t' ' ' | tr '\n' ' ')"
done
