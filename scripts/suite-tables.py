#!/usr/bin/env python3
"""Markdown tables of a `laser suite` folder, from its per-task `result.json` files (so that a
suite still running, or stopped, can be summarised too): one row per finished task with its
accuracy and balanced-accuracy changes, the totals, and with `--compare-rules` the comparison of
selection rules (mean test change, tasks significantly harmed and helped — by accuracy, and by
balanced accuracy too — tasks edited) and each task's ceiling (the best test accuracy among every
scanned candidate) and sound ceiling (the same among those whose test log-loss is within 1.25× the
base model's) beside the default rule's change.

Usage: scripts/suite-tables.py SUITE_DIR
"""
import glob
import json
import os
import sys


def fmt_delta(d):
    return f"{d['accuracy']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def short(edits):
    if not edits:
        return "no edit"
    e = edits[0]
    name = e["name"].replace("model.layers.", "L").replace(".weight", "")
    return f"`{name}` ρ={e['rho']} {e['factor']}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = []
    for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "result.json"))):
        rows.append(json.load(open(path))["result"])
    if not rows:
        sys.exit(f"no finished task under {sys.argv[1]}")
    print("| task | select / test | majority (test) | base test | rule's choice | test | Δ test [95% CI] | Δ balanced [95% CI] | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        bt, at = r["base"]["test"], r["adapted"]["test"]
        maj = bt.get("majority")
        # Balanced accuracy exists where every item offers the same choices (results written
        # before it was reported have none either).
        bal = fmt_delta(r["balanced_delta"]) if r.get("balanced_delta") else "—"
        print(
            f"| {r['task']} | {r['n_select']} / {r['n_test']} | {maj:.1f}% | {bt['accuracy']:.1f}% · {bt['logloss']:.3f} "
            f"| {short(r['edits'])} | {at['accuracy']:.1f}% · {at['logloss']:.3f} | {fmt_delta(r['delta'])} | {bal} | {r['seconds']:.0f} s |"
        )
    helped = [r for r in rows if r.get("delta") and r["delta"]["ci_low"] > 0]
    blowups = [r["task"] for r in rows
               if r["edits"] and r["adapted"]["test"]["logloss"] > 1.25 * r["base"]["test"]["logloss"]]
    strict = [r for r in helped if not r.get("balanced_delta") or r["balanced_delta"]["ci_low"] > 0]
    print()
    print(f"{len(rows)} tasks; significantly helped {len(helped)}, of them {len(strict)} with balanced accuracy "
          f"significantly up too (or choices that differ per item); significantly harmed "
          f"{sum(1 for r in rows if r.get('delta') and r['delta']['ci_high'] < 0)}; "
          f"mean Δ test {sum(r['delta']['accuracy'] for r in rows if r.get('delta')) / len(rows):+.2f}; "
          f"edited {sum(1 for r in rows if r['edits'])}, of them {len(blowups)} with a test log-loss more than "
          f"25% above the base model's{' (' + ', '.join(blowups) + ')' if blowups else ''}; "
          f"time {sum(r['seconds'] for r in rows):.0f} s.")
    ceilings = [r for r in rows if r.get("ceiling")]
    if ceilings:
        print()
        print("| task | rule's choice | Δ test | ceiling: best scanned candidate on test | its Δ test [95% CI] "
              "| its selection acc. | its test log-loss (base) | sound ceiling (log-loss ≤ 1.25× base) | its Δ test [95% CI] |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in ceilings:
            c = r["ceiling"]
            sc = r.get("sound_ceiling")
            if sc is None:
                sound = "none within the bound | —"
            elif sc["edits"] == c["edits"]:
                sound = "the ceiling | —"
            else:
                sound = f"{short(sc['edits'])} | {fmt_delta(sc['delta'])}"
            print(f"| {r['task']} | {short(r['edits'])} | {fmt_delta(r['delta'])} | {short(c['edits'])} "
                  f"| {fmt_delta(c['delta'])} | {c['select']['accuracy']:.1f}% "
                  f"| {c['test']['logloss']:.3f} ({r['base']['test']['logloss']:.3f}) "
                  f"| {sound} |")
        up = sum(1 for r in ceilings if r["ceiling"]["delta"]["ci_low"] > 0)
        sound_up = sum(1 for r in ceilings if r.get("sound_ceiling") and r["sound_ceiling"]["delta"]["ci_low"] > 0)
        print()
        print(f"Ceiling significantly above the base model on {up} of {len(ceilings)} tasks, the sound "
              f"ceiling on {sound_up}; the rule's recommendations on {len(helped)}.")
    rules = {}
    for r in rows:
        for o in r.get("rules", []):
            key = (o["rule"], o["factors"])
            s = rules.setdefault(key, {"sum": 0.0, "harmed": 0, "helped": 0, "strict": 0, "edited": 0, "n": 0, "select_gain": 0.0})
            d = o["delta"]
            s["sum"] += d["accuracy"]
            s["harmed"] += d["ci_high"] < 0
            s["helped"] += d["ci_low"] > 0
            b = o.get("balanced_delta")
            s["strict"] += d["ci_low"] > 0 and (not b or b["ci_low"] > 0)
            s["edited"] += bool(o["edits"])
            s["n"] += 1
            s["select_gain"] += o["select"]["accuracy"] - r["base"]["select"]["accuracy"]
    if rules:
        print()
        print("| rule | factorizations | tasks | mean Δ selection | mean Δ test | harmed | helped | helped, balanced too | edited |")
        print("|---|---|---|---|---|---|---|---|---|")
        for (rule, factors), s in rules.items():
            n = s["n"]
            print(
                f"| {rule} | {factors} | {n} | {s['select_gain'] / n:+.2f} | {s['sum'] / n:+.2f} | {s['harmed']} | {s['helped']} | {s['strict']} | {s['edited']} |"
            )
        print()
        print("Per task, each rule's test change [95% CI] and choice:")
        print()
        names = [f"{rule} ({factors})" for rule, factors in rules]
        print("| task | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for r in rows:
            cells = []
            for key in rules:
                o = next((o for o in r.get("rules", []) if (o["rule"], o["factors"]) == key), None)
                cells.append("—" if o is None else f"{fmt_delta(o['delta'])} {short(o['edits'])}")
            print(f"| {r['task']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
