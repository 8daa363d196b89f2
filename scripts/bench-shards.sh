#!/usr/bin/env bash
# One process against N local shards (`--shard I/N`, one thread each, run at once) plus
# `laser merge`, on the same exhaustive grid of the default model and bundled task; prints the
# wall times and checks that the merged report equals the single process's.
#
# Usage: scripts/bench-shards.sh [N] [extra search flags...]
#   LASER_BIN   the binary (default: target/release/laser, built if missing)
#   default grid: --layers 28-29 --kinds fc_out,fc_up --rho 0.1,0.01 (8 candidates)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
shards=${1:-2}
shift || true
grid=(--layers 28-29 --kinds fc_out,fc_up --rho 0.1,0.01)
if [ "$#" -gt 0 ]; then grid=("$@"); fi
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${LASER_BIN:-$target/release/laser}"
if [ ! -x "$bin" ]; then cargo build --release --quiet -p laser-cli; fi
model=$(scripts/fetch-smollm2.sh)
work=laser-out/bench-shards
rm -rf "$work"; mkdir -p "$work"
search=(search --model "$model" --task data/epistemic_reasoning_300.json --strategy exhaustive "${grid[@]}")
now() { date +%s.%N; }

t0=$(now)
"$bin" "${search[@]}" --out "$work/one" --json > "$work/one.json"
t1=$(now)
pids=()
for i in $(seq 1 "$shards"); do
  "$bin" --threads 1 "${search[@]}" --out "$work/sharded" --shard "$i/$shards" --json \
    > "$work/shard-$i.json" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t2=$(now)
"$bin" merge "$work/sharded" --json > "$work/merged.json"
t3=$(now)

python3 - "$work" "$shards" "$t0" "$t1" "$t2" "$t3" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
t0, t1, t2, t3 = map(float, sys.argv[3:7])
one = json.load(open(f"{work}/one.json"))
merged = json.load(open(f"{work}/merged.json"))
keys = ["base", "best", "selection", "delta", "candidates_evaluated"]
same = all(one[k] == merged[k] for k in keys) and \
    [(c["edits"], c["select"]) for c in one["candidates"]] == \
    [(c["edits"], c["select"]) for c in merged["candidates"]]
shards = [json.load(open(f"{work}/shard-{i}.json")) for i in range(1, n + 1)]
print(f"candidates: {one['candidates_evaluated']}; per shard: {[s['candidates'] for s in shards]}")
print(f"one process (all threads): {t1 - t0:.1f} s  (scan {one['seconds']['scan']:.1f} s, test {one['seconds']['test']:.1f} s)")
print(f"{n} shards (1 thread each, at once): {t2 - t1:.1f} s; merge: {t3 - t2:.1f} s "
      f"(test {merged['seconds']['test']:.1f} s); together {t3 - t1:.1f} s")
print(f"merged report equals the single process's: {same}")
sys.exit(0 if same else 1)
PY
