#!/usr/bin/env bash
# Runs one cargo-fuzz (libFuzzer) target for a number of seconds, starting from the committed
# seeds, and prints libFuzzer's final statistics. Crashes land in fuzz/artifacts/<target>/; keep
# each one as tests/fixtures/fuzz/regressions/<seeds>/<what-it-broke> so the default test run
# replays it.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS=300] [extra libFuzzer flags...]
# Targets: gguf_header gguf_model safetensors model_config task edit_list candidate_log
# ranking_file shard_spec factorized_layout
# Needs: cargo install cargo-fuzz. On a stable toolchain cargo-fuzz's flags need RUSTC_BOOTSTRAP=1,
# which this script sets (no nightly toolchain can be fetched here). The sanitizer defaults to
# none (the code under test is safe Rust; panics, aborts, OOM and hangs are what is hunted);
# LASER_FUZZ_SANITIZER=address turns ASan on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags]}"
secs="${2:-300}"
shift $(( $# >= 2 ? 2 : 1 ))
case "$target" in
  gguf_header|gguf_model) seeds=gguf ;;
  safetensors) seeds=safetensors ;;
  model_config) seeds=config ;;
  task) seeds=task ;;
  edit_list) seeds=edits ;;
  candidate_log) seeds=log ;;
  ranking_file) seeds=ranking ;;
  shard_spec) seeds=shards ;;
  factorized_layout) seeds=factorized ;;
  *) echo "error: unknown fuzz target \`$target\`" >&2; exit 2 ;;
esac
command -v cargo-fuzz >/dev/null || { echo "error: needs cargo-fuzz (cargo install cargo-fuzz)" >&2; exit 2; }
cd "$root/fuzz"
# libFuzzer writes new inputs into its corpus folder: seed a working copy, never the fixtures.
mkdir -p "corpus/$target"
cp -n "$root/tests/fixtures/fuzz/$seeds"/* "corpus/$target/"
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --sanitizer "${LASER_FUZZ_SANITIZER:-none}" "$target" "corpus/$target" -- \
  -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 "$@"
