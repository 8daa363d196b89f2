#!/usr/bin/env python3
"""Two `laser suite --json` outputs, task by task: whether each task got the same recommendation
(edit list) with the same selection accuracy and log-loss, its test change in each, and the
totals. Exit status 1 when any task's recommendation or selection metrics differ, or a task of
the first run is missing from the second.

    python3 scripts/suite-compare.py runs/suite-confirm-pick.json runs/suite-t300.json
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


def main(first_path, second_path):
    with open(first_path, encoding="utf-8") as f:
        first = json.load(f)
    with open(second_path, encoding="utf-8") as f:
        second = json.load(f)
    theirs = {t["task"]: t for t in second["tasks"]}
    differ = 0
    print("| task | same choice | same selection metrics | test items | Δ test, first | Δ test, second | choice (second) |")
    print("|---|---|---|---|---|---|---|")
    for a in first["tasks"]:
        b = theirs.get(a["task"])
        if b is None:
            print(f"| {a['task']} | missing from the second run | | | | | |")
            differ += 1
            continue
        same_choice = a["edits"] == b["edits"]
        sa, sb = a["adapted"]["select"], b["adapted"]["select"]
        same_select = sa["accuracy"] == sb["accuracy"] and sa["logloss"] == sb["logloss"]
        differ += not (same_choice and same_select)
        choice = ", ".join(short(e) for e in b["edits"]) or "no edit"
        print(
            f"| {a['task']} | {'yes' if same_choice else '**no**'} | {'yes' if same_select else '**no**'} "
            f"| {a['n_test']} / {b['n_test']} | {delta_text(a.get('delta'))} | {delta_text(b.get('delta'))} | {choice} |"
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
