#!/usr/bin/env bash
# Exact against statistical racing on the real default model and the bundled task
# (docs/BENCHMARKS.md, "Statistical racing"): one gradient ranking shared by every run, so only
# the scan differs; the default scan (top 5 × 2 ρ = 10 candidates) and 3× wider ones, under the
# guarded and LASER rules, one binary, back to back.
#
#   scripts/bench-race-modes.sh LASER [WORKDIR]
#
# Prints one line per run (scripts/lib/bench-search.sh).
set -euo pipefail
bin=$1 dir=${2:-bench-race-modes}
# shellcheck source=lib/bench-search.sh
source "$(dirname "$0")/lib/bench-search.sh"
bench_setup "$dir" "$bin"
for race in exact statistical; do
  run "default-$race" "$bin" --race "$race"
  run "wide-$race" "$bin" --top-k 15 --race "$race"
done
for race in exact statistical; do
  run "wide-laser-$race" "$bin" --top-k 15 --select laser --race "$race"
done
