# Shared by the racing benchmarks (scripts/bench-racing.sh, scripts/bench-race-modes.sh).
#
#   bench_setup WORKDIR LASER   enter WORKDIR, make the shared gradient ranking (with LASER) and
#                               set `common`, the flags every search shares
#   run NAME BINARY [FLAGS...]  one `laser search` over the bundled task with that ranking
#
# The model is LASER_MODEL (default smollm2-135m); the task, the bundled one.
bench_setup() {
  local dir=$1 bin=$2 repo model task
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  model=${LASER_MODEL:-smollm2-135m}
  task=$repo/data/epistemic_reasoning_300.json
  mkdir -p "$dir" && cd "$dir"
  common=(--model "$model" --task "$task" --strategy gradient --ranking rank/ranking.json --test-max 50 --json)
  [ -f rank/ranking.json ] || "$bin" grad --model "$model" --task "$task" --out rank > /dev/null
}

#
# Prints scan/test/total seconds, candidates, stopped, items scored, the recommendation, and
# /usr/bin/time's wall seconds and peak RSS; keeps NAME.json, NAME.err and NAME.time.
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
      f"items {sum(c['select']['n'] for c in r['candidates']):5d} "
      f"{edits} | {open(n + '.time').read().strip()}", flush=True)
PY
}
