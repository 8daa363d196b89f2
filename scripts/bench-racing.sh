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
repo=$(cd "$(dirname "$0")/.." && pwd)
model=${LASER_MODEL:-smollm2-135m}
task=$repo/data/epistemic_reasoning_300.json
mkdir -p "$dir" && cd "$dir"
common=(--model "$model" --task "$task" --strategy gradient --ranking rank/ranking.json --test-max 50 --json)
[ -f rank/ranking.json ] || "$new" grad --model "$model" --task "$task" --out rank > /dev/null
run() { # name binary args...
  local name=$1 bin=$2
  shift 2
  rm -rf "out-$name"
  /usr/bin/time -f "%e s %M KB" -o "$name.time" "$bin" search "${common[@]}" --out "out-$name" "$@" \
    > "$name.json" 2> "$name.err"
  python3 - "$name" <<'PY'
import json, sys
n = sys.argv[1]
r = json.load(open(n + ".json"))
s = r["seconds"]
edits = [(e["name"], e["rho"], e["factor"]) for e in r["best"]["edits"]] or "no edit"
print(f"{n:24s} scan {s['scan']:7.1f}s test {s['test']:5.1f}s total {s['total']:7.1f}s "
      f"candidates {r['candidates_evaluated']:3d} stopped {r.get('candidates_stopped', '-')!s:>3} "
      f"{edits} | {open(n + '.time').read().strip()}", flush=True)
PY
}
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
