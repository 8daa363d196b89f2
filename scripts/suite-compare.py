#!/usr/bin/env python3
"""Two `laser suite --json` outputs, task by task: whether each task got the same recommendation
(edit list) with the same selection accuracy and log-loss, its test change in each, and the
totals. Exit status 1 when any task's recommendation or selection metrics differ, or a task of
the first run is missing from the second.

    python3 scripts/suite-compare.py runs/suite-confirm-pick.json runs/suite-t300.json
    python3 scripts/suite-compare.py OLD1.json,OLD2.json NEW1.json,NEW2.json

Outputs joined by commas count as one run (a suite run in parts): their tasks in one table, their
times, helped and harmed counts summed, the mean change over all their tasks.
"""
import json
import sys


def short(edit):
    name = edit["name"].removeprefix("model.").removesuffix(".weight")
    return f"{name} rho={edit['rho']} {edit['factor']}"


def delta_text(delta):
    if not delta:
        return "-"
    return f"{delta['accuracy']:+.1f} [{delta['ci_low']:+.1f}, {delta['ci_high']:+.1f}]"


def load(paths):
    """One run from comma-joined `laser suite --json` outputs."""
    parts = []
    for path in paths.split(","):
        with open(path, encoding="utf-8") as f:
            parts.append(json.load(f))
    if len(parts) == 1:
        return parts[0]
    tasks = [t for p in parts for t in p["tasks"]]
    run = {"tasks": tasks}
    for key in ("helped", "helped_balanced", "harmed", "seconds"):
        run[key] = sum(p.get(key) or 0 for p in parts)
    deltas = [t["delta"]["accuracy"] for t in tasks if t.get("delta")]
    run["mean_delta"] = sum(deltas) / len(deltas) if deltas else None
    return run


def seconds_text(a, b):
    if not (a.get("seconds") and b.get("seconds")):
        return "-"
    return f"{a['seconds']:.1f} → {b['seconds']:.1f} ({b['seconds'] / a['seconds']:.2f}x)"


def main(first_path, second_path):
    first, second = load(first_path), load(second_path)
    theirs = {t["task"]: t for t in second["tasks"]}
    differ = 0
    print("| task | same choice | same selection metrics | test items | Δ test, first | Δ test, second | choice (second) | seconds (ratio) |")
    print("|---|---|---|---|---|---|---|---|")
    for a in first["tasks"]:
        b = theirs.get(a["task"])
        if b is None:
            print(f"| {a['task']} | missing from the second run | | | | | | |")
            differ += 1
            continue
        same_choice = a["edits"] == b["edits"]
        sa, sb = a["adapted"]["select"], b["adapted"]["select"]
        same_select = sa["accuracy"] == sb["accuracy"] and sa["logloss"] == sb["logloss"]
        differ += not (same_choice and same_select)
        choice = ", ".join(short(e) for e in b["edits"]) or "no edit"
        print(
            f"| {a['task']} | {'yes' if same_choice else '**no**'} | {'yes' if same_select else '**no**'} "
            f"| {a['n_test']} / {b['n_test']} | {delta_text(a.get('delta'))} | {delta_text(b.get('delta'))} | {choice} "
            f"| {seconds_text(a, b)} |"
        )
    print()
    for key in ("helped", "helped_balanced", "harmed", "mean_delta", "seconds"):
        print(f"{key}: {first.get(key)} -> {second.get(key)}")
    print(f"tasks whose choice or selection metrics differ: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: suite-compare.py FIRST.json SECOND.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
