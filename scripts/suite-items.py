#!/usr/bin/env python3
"""Selection items scored per task of a `laser suite` output folder, from each task's candidate
log: the candidates, how many were scored on every selection item, and the item scorings in all
(the base model's included). With two folders, the second's totals over the first's.

    python3 scripts/suite-items.py runs/suite-prefix [runs/suite-confirm]
"""
import json
import pathlib
import sys


def items(folder):
    rows = {}
    for log in sorted(pathlib.Path(folder).glob("*/candidates.jsonl")):
        last = {}
        for line in log.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if "key" in entry:
                last[entry["key"]] = entry  # a key logged twice reads as its last line
        n = last.get("base", {}).get("select", {}).get("n", 0)
        cands = [e for k, e in last.items() if k != "base"]
        rows[log.parent.name] = (
            len(cands),
            sum(1 for e in cands if e["select"]["n"] == n),
            n + sum(e["select"]["n"] for e in cands),
        )
    return rows


def main(folders):
    tables = [items(f) for f in folders]
    print("| task | " + " | ".join(f"{f}: candidates / on every item / item scorings" for f in folders) + " |")
    print("|---|" + "---|" * len(folders))
    for task in sorted(set().union(*tables)):
        cells = [" / ".join(map(str, t[task])) if task in t else "—" for t in tables]
        print(f"| {task} | " + " | ".join(cells) + " |")
    totals = [sum(r[2] for r in t.values()) for t in tables]
    print("\nitem scorings: " + ", ".join(f"{f} {s}" for f, s in zip(folders, totals)))
    if len(totals) == 2 and totals[0]:
        print(f"second / first: {totals[1] / totals[0]:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
