#!/usr/bin/env bash
# `laser adapt` with no flags (the default model, the bundled task) under two binaries, back to
# back on one machine: the side-by-side of old and new defaults in docs/BENCHMARKS.md ("The new
# defaults, side by side"). Prints, per binary, its summary's time line, wall time and peak RSS.
#
#   scripts/bench-adapt-defaults.sh OLD_LASER NEW_LASER [WORKDIR]
set -euo pipefail
old=$1 new=$2 dir=${3:-bench-adapt-defaults}
mkdir -p "$dir"
for bin in "$old" "$new"; do
  tag=$(basename "$bin")
  rm -rf "$dir/adapt-$tag"
  /usr/bin/time -v "$bin" adapt --out "$dir/adapt-$tag" > "$dir/$tag.txt" 2> "$dir/$tag.time"
  echo "$tag: $(grep -E '^[0-9]+ candidates' "$dir/$tag.txt")"
  echo "  $(grep -E 'Elapsed|Maximum resident' "$dir/$tag.time" | tr -s ' \t' ' ' | tr '\n' ' ')"
done
