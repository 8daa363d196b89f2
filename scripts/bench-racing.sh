#!/usr/bin/env bash
# Racing against the full scan on the real default model and the bundled task (docs/BENCHMARKS.md,
# "Racing the scan"): one gradient ranking shared by every run, so only the scan differs; an old
# binary (before racing) and the new one back to back.
#
#   scripts/bench-racing.sh OLD_LASER NEW_LASER [WORKDIR]
#
# Prints one line per run: scan/test/total seconds, candidates, stopped, the recommendation, and
# /usr/bin/time's wall seconds and peak RSS.
set -euo pipefail
old=$1 new=$2 dir=${3:-bench-racing}
# shellcheck source=lib/bench-search.sh
source "$(dirname "$0")/lib/bench-search.sh"
bench_setup "$dir" "$new"
run default-old "$old"
run default-exact "$new"
run default-off "$new" --race off
run wide-old "$old" --top-k 15
run wide-exact "$new" --top-k 15
run wide-laser-exact "$new" --top-k 15 --select laser
run wide-laser-off "$new" --top-k 15 --select laser --race off
for block in 10 20; do
  run "default-exact-b$block" "$new" --race-block "$block"
  run "wide-exact-b$block" "$new" --top-k 15 --race-block "$block"
done
