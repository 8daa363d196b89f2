#!/usr/bin/env bash
# Runs a `laser -v …` command while sampling its resident memory, then prints the peak of each
# stretch of its log: the figures of docs/RESULTS.md's "Memory on the long-prefix task" (per
# phase, per gradient micro-batch, per suite task). Sizes are KiB ÷ 10⁶, as `/usr/bin/time -v`'s
# figures are quoted in the docs (the default target of Gemma 3 270M, 4,021,472,640 bytes, is
# 3.93 in that unit).
#
#   scripts/rss-trace.sh PREFIX COMMAND [ARGS...]
#   e.g. scripts/rss-trace.sh /tmp/grad laser -vv grad --model gemma-3-270m \
#          --task ../shared/data/bigbench-suite/analogical_similarity.json --n 100 --out /tmp/rank
#
# Writes PREFIX.out (stdout), PREFIX.log (stderr: the -v log) and PREFIX.rss (epoch seconds,
# VmRSS and VmHWM in KiB, one line per sample; RSS_INTERVAL seconds apart, default 0.2). A
# stretch starts at every log line that names a phase, a suite task or a gradient micro-batch.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 PREFIX COMMAND [ARGS...]" >&2
  exit 2
fi
prefix=$1
shift
interval=${RSS_INTERVAL:-0.2}
: > "$prefix.rss"
"$@" > "$prefix.out" 2> "$prefix.log" &
pid=$!
while kill -0 "$pid" 2> /dev/null; do
  # By name: /proc lists VmHWM before VmRSS.
  if stats=$(awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {if (r) print r, h}' \
    "/proc/$pid/status" 2> /dev/null); then
    [ -n "$stats" ] && echo "$(date +%s.%N) $stats" >> "$prefix.rss"
  fi
  sleep "$interval"
done
status=0
wait "$pid" || status=$?
python3 - "$prefix" << 'EOF'
import datetime, re, sys

prefix = sys.argv[1]
samples = []
for line in open(prefix + ".rss"):
    f = line.split()
    if len(f) == 3:
        samples.append((float(f[0]), int(f[1]), int(f[2])))
marks = []
pattern = re.compile(r"^(\S+)Z\s+\w+\s+.*?(phase: .*|suite task .*|gradient micro-batch.*)$")
for line in open(prefix + ".log"):
    m = pattern.match(line.rstrip())
    if m:
        t = datetime.datetime.fromisoformat(m.group(1)[:26]).replace(tzinfo=datetime.timezone.utc)
        marks.append((t.timestamp(), m.group(2)[:90]))
if not samples:
    sys.exit("no samples: the command ended before the first one")
marks = [(samples[0][0], "start")] + marks + [(float("inf"), "end")]
for (t0, what), (t1, _) in zip(marks, marks[1:]):
    stretch = [rss for t, rss, _ in samples if t0 <= t < t1]
    if stretch:
        print(f"{max(stretch) / 1e6:6.3f}  {what}")
print(f"{max(h for _, _, h in samples) / 1e6:6.3f}  peak (VmHWM)")
EOF
exit "$status"
