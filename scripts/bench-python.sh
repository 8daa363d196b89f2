#!/usr/bin/env bash
# `laser adapt` and `laser_rs.adapt` side by side on the same machine, same model and task, same
# options, alternating, each into a fresh folder: wall seconds and whether the reports agree.
#
#   bash scripts/bench-python.sh LASER_BINARY PYTHON [ROUNDS] [-- adapt options as CLI flags]
#
# PYTHON is an interpreter with laser_rs installed (scripts/python-tests.sh leaves one in the
# cargo target folder's python-venv). The model is the default one (fetched if absent), the task
# the bundled one. Example: bash scripts/bench-python.sh target/release/laser \
#   ~/.cache/laser-rs/target/python-venv/bin/python 2 -- --test-max 50
set -euo pipefail
laser="$1"; py="$2"; rounds="${3:-2}"
shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" = "--" ] && shift
flags=("$@")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(grep -m1 -o -w avx512f /proc/cpuinfo || echo 'no avx512f'); $(grep -m1 -o -w avx2 /proc/cpuinfo || echo 'no avx2')"
nproc | sed 's/^/cores: /'
# Flags → Python keyword options (`--test-max 50` → test_max=50, `--rho 0.1,0.5` → rho=[...]).
options="$("$py" - "${flags[@]}" <<'PY'
import json, sys
args, out = sys.argv[1:], {}
i = 0
while i < len(args):
    key = args[i].lstrip("-").replace("-", "_")
    value = args[i + 1]
    i += 2
    parts = value.split(",")
    def conv(x):
        for t in (int, float):
            try:
                return t(x)
            except ValueError:
                pass
        return x
    out[key] = [conv(p) for p in parts] if len(parts) > 1 else conv(value)
print(json.dumps(out))
PY
)"
for round in $(seq 1 "$rounds"); do
    t0=$(date +%s.%N)
    "$laser" adapt --json --out "$work/cli-$round" "${flags[@]}" >"$work/cli-$round.json" 2>/dev/null
    t1=$(date +%s.%N)
    "$py" - "$work/py-$round" "$options" >"$work/py-$round.json" <<'PY'
import json, sys
import laser_rs
model = laser_rs.Model.load(quiet=True)
report = laser_rs.adapt(model, out=sys.argv[1], progress=False, **json.loads(sys.argv[2]))
print(json.dumps(report.to_dict()))
PY
    t2=$(date +%s.%N)
    same="$("$py" - "$work/cli-$round.json" "$work/py-$round.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
keys = ("best", "base", "selection", "delta", "candidates_evaluated")
print("same" if all(a[k] == b[k] for k in keys) else "DIFFERENT")
PY
)"
    printf 'round %s: cli %.1f s, python %.1f s (%s result)\n' "$round" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$same"
done
