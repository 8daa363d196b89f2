#!/usr/bin/env python3
"""Per-thread split of a `perf record --call-graph dwarf` profile, and what the main thread does.

The profiles in docs/BENCHMARKS.md sum every thread; this shows the share each thread holds and,
for the main thread (the lowest thread id: it hands products to the worker pool and waits), the
leaf function and the innermost `laser*` frames of its samples: work that runs on one core while
the workers idle. Used for issue 18's third round.

Usage:
  perf record -F 150 --call-graph dwarf,16384 -o perf.data target/release/laser eval ...
  perf script -i perf.data -F tid,ip,sym | scripts/perf-threads.py [--top N]
"""
import collections
import sys


def samples(lines):
    """(thread id, [frames, innermost first]) per sample of `perf script -F tid,ip,sym`."""
    tid, stack = None, []
    for line in lines:
        if not line.strip():
            if tid is not None:
                yield tid, stack
            tid, stack = None, []
        elif not line.startswith("\t"):
            tid, stack = int(line.split()[0]), []
        else:
            parts = line.strip().split(" ", 1)
            if len(parts) > 1 and not parts[1].endswith("(inlined)"):
                stack.append(parts[1])
    if tid is not None:
        yield tid, stack


def main():
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    all_samples = list(samples(sys.stdin))
    if not all_samples:
        sys.exit("no samples on stdin (pipe `perf script -F tid,ip,sym` into this)")
    per_thread = collections.Counter(tid for tid, _ in all_samples)
    total = len(all_samples)
    print(f"{total} samples")
    for tid, n in per_thread.most_common():
        print(f"  thread {tid}: {n} ({100 * n / total:.1f}%)")
    main_tid = min(per_thread)
    print(f"\nmain thread {main_tid}, by leaf and innermost laser frames:")
    keys = collections.Counter()
    for tid, stack in all_samples:
        if tid != main_tid:
            continue
        ours = [f for f in stack if f.startswith(("laser_", "laser::", "<laser_"))]
        leaf = stack[0] if stack else "?"
        keys[(leaf[:50], ours[0][:70] if ours else "?")] += 1
    for (leaf, frame), n in keys.most_common(top):
        print(f"  {n:6d} {100 * n / total:5.2f}%  {leaf}  <-  {frame}")


if __name__ == "__main__":
    main()
