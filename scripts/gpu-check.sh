#!/usr/bin/env bash
# The GPU check of issue 15, ready for when a machine with a GPU is available: builds with
# `--features wgpu`, runs the oracle parity and editing tests on the GPU backend, times `laser
# eval` and `laser adapt` on SmolLM2 and `laser grad` on the synthetic 1B llama, on the GPU and on
# the CPU, and prints one summary table. Aimed at under 10 minutes on a modern NVIDIA GPU with a
# warm build (the wgpu build itself takes ~27 min from nothing on 2 cores; more cores help).
#
# Usage: scripts/gpu-check.sh [--skip-build]
#   CARGO_TARGET_DIR   build folder (default: target-wgpu beside the repository's target)
#   LASER_GPU_WORK     scratch folder (default: laser-out/gpu-check)
#
# It has not run on a GPU yet (docs/BENCHMARKS.md says so); on a machine without one, wgpu falls
# back to whatever adapter it finds (Mesa's lavapipe on the CPU), which tests correctness only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-wgpu}"
work="${LASER_GPU_WORK:-$root/laser-out/gpu-check}"
mkdir -p "$work"
bin="$CARGO_TARGET_DIR/release/laser"
synth="$CARGO_TARGET_DIR/release/examples/synthetic_llama"

if [ "${1:-}" != --skip-build ]; then
  echo "[gpu-check] building laser with --features wgpu (release)" >&2
  cargo build --release --quiet -p laser-cli --features wgpu
  cargo build --release --quiet --example synthetic_llama
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "[gpu-check] parity and editing tests on the GPU backend" >&2
parity=pass
LASER_TEST_BACKEND=wgpu cargo test --release --quiet -p laser-model --features wgpu \
  --test tiny_parity --test editing_and_export > "$work/parity.log" 2>&1 || parity=FAIL

model=$(scripts/fetch-smollm2.sh)
task=data/epistemic_reasoning_300.json
[ -d "$work/llama-1b" ] || "$synth" "$work/llama-1b" > /dev/null

# run NAME CMD...: wall seconds and peak RSS (GNU time) of one command into $work/NAME.time
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" \
    || echo "FAILED" >> "$work/$name.time"
}
for backend in wgpu flex; do
  run "eval-smollm2-$backend" "$bin" --backend "$backend" eval --model "$model" --task "$task" --split all --json
  run "adapt-smollm2-$backend" "$bin" --backend "$backend" adapt --model "$model" --task "$task" --out "$work/adapt-$backend" --json
  run "grad-1b-$backend" "$bin" --backend "$backend" grad --model "$work/llama-1b" --task "$work/llama-1b/task.jsonl" --n 10 --json
done

python3 - "$work" "$parity" <<'PY'
import json, sys, pathlib
work, parity = pathlib.Path(sys.argv[1]), sys.argv[2]
print(f"parity and editing tests on wgpu: {parity} (log: {work}/parity.log)")
print(f"{'run':<22} {'backend':<7} {'wall s':>8} {'peak RSS GB':>12}  result")
for name in ["eval-smollm2", "adapt-smollm2", "grad-1b"]:
    for backend in ["wgpu", "flex"]:
        t = (work / f"{name}-{backend}.time").read_text().split()
        wall, rss = (float(t[0]), int(t[1]) / 1e6) if len(t) >= 2 else (float("nan"), float("nan"))
        try:
            out = json.loads((work / f"{name}-{backend}.out").read_text())
            result = (f"acc {out['accuracy']:.1f}" if "accuracy" in out else
                      f"test {out['best']['test']['accuracy']:.1f}" if "best" in out else
                      f"loss {out['loss']:.4f}")
        except Exception as e:
            result = f"FAILED ({(work / f'{name}-{backend}.err').read_text().strip()[-200:]})"
        print(f"{name:<22} {backend:<7} {wall:>8.1f} {rss:>12.2f}  {result}")
PY
