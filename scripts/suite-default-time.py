#!/usr/bin/env python3
"""Usage: scripts/suite-default-time.py SUITE_DIR SUITE_LOG... (the `-v` stderr logs of the run).

Estimate each task's wall time under the default rule from a --compare-rules suite run. The
test-split phase of such a run evaluates `steps` models (the base and each rule's distinct
choice); a default run evaluates the base and, when the guarded rule edits, that edit. The
phase's time is split evenly over its steps (they are the same items, so alike in cost)."""
import json, re, sys, glob, os
from datetime import datetime
suite = sys.argv[1]
ts = lambda l: datetime.fromisoformat(l[:26])
phases = {}  # task -> (test_start, steps, end)
for log in sys.argv[2:]:
    task = None
    lines = open(log, errors='replace').read().splitlines()
    for line in lines:
        m = re.search(r'suite task task=(\S+)', line)
        if m:
            if task and task in phases and phases[task][2] is None:
                phases[task] = (*phases[task][:2], ts(line))
            task = m.group(1); continue
        m = re.search(r'phase: test split steps=(\d+)', line)
        if m and task: phases[task] = (ts(line), int(m.group(1)), None)
tot_all = tot_def = 0
for f in sorted(glob.glob(os.path.join(suite, '*', 'result.json'))):
    r = json.load(open(f))['result']
    t = r['task']; total = r['seconds']
    start, steps, end = phases.get(t, (None, 0, None))
    if end is None and start is not None:
        end = datetime.fromtimestamp(os.path.getmtime(f))
    test = (end - start).total_seconds() if start else 0.0
    needed = 1 + (1 if r['edits'] else 0)
    default = total - test * max(steps - needed, 0) / max(steps, 1)
    print(f"{t:40s} total {total:6.0f} s  test phase {test:5.0f} s / {steps} evals  default ≈ {default:6.0f} s")
    tot_all += total; tot_def += default
print(f"{'sum':40s} total {tot_all:6.0f} s ({tot_all/60:.1f} min)  default ≈ {tot_def:6.0f} s ({tot_def/60:.1f} min)")
