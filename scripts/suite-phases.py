#!/usr/bin/env python3
"""Per-task phase times of a `laser -v suite` run, from its log (stderr): the gradient pass (with
the SVDs), the scan and the test split, each the time from its phase line to the next one. The base
model's selection pass runs after the gradient pass since a468cb7 and is a phase of its own
("base") since the commit after it (a468cb7's logs count it under the gradient pass); before
a468cb7 it ran first, unlogged, and no column counted it.

    python3 scripts/suite-phases.py runs/suite.log [OTHER.log ...]
    python3 scripts/suite-phases.py OLD1.log,OLD2.log NEW1.log,NEW2.log

Prints one table per argument and, with two, the second's totals over the first's. Logs joined by
commas count as one run (a suite run in parts: their tasks in one table). A phase the
log does not see end (the last task's test split, when nothing is logged after it) shows "—" and
counts as zero.
"""
import datetime
import re
import sys


def phases(path):
    marks, last = [], None
    for line in open(path, encoding="utf-8"):
        try:
            when = datetime.datetime.fromisoformat(line[:27].rstrip("Z "))
        except ValueError:
            continue  # not a log line (e.g. /usr/bin/time's report)
        last = when
        task = re.search(r"suite task task=(\S+)", line)
        phase = re.search(r"phase: (\S+)", line)
        if task or phase:
            marks.append(("task", task.group(1), when) if task else ("phase", phase.group(1), when))
    if last is not None and marks and last > marks[-1][2]:
        marks.append(("end", "", last))  # the last phase ends with the last log line
    rows, current = {}, None
    for i, (kind, name, when) in enumerate(marks):
        if kind == "task":
            current = name
            rows[current] = {}
        elif current is not None and i + 1 < len(marks):
            rows[current][name] = (marks[i + 1][2] - when).total_seconds()
    return rows


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: suite-phases.py LOG [OTHER_LOG ...]")
    totals = []
    for arg in sys.argv[1:]:
        rows = {}
        for path in arg.split(","):
            rows.update(phases(path))
        print(f"{arg}\n| task | gradient + SVDs | base | scan | test |\n|---|---|---|---|---|")
        total = {"gradient": 0.0, "base": 0.0, "scan": 0.0, "test": 0.0}
        for task, r in rows.items():
            for k in total:
                total[k] += r.get(k, 0.0)
            cells = [f"{r[k]:.0f} s" if k in r else "—" for k in total]
            print(f"| {task} | " + " | ".join(cells) + " |")
        print("| **all** | " + " | ".join(f"**{v:,.0f} s**" for v in total.values()) + " |\n")
        totals.append(total)
    if len(totals) == 2:
        a, b = totals
        print("second / first: " + ", ".join(f"{k} {b[k] / a[k]:.2f}x" for k in a if a[k]))


if __name__ == "__main__":
    main()
