#!/usr/bin/env python3
"""What each ρ-shortlist length R would have chosen, from a gradient search run with
`--rhos-per-matrix all` (its report.json or --json output). Used for docs/RESULTS.md.
Usage: scripts/analyze-shortlist.py REPORT.json"""
import json,sys
rep=json.load(open(sys.argv[1]))
cands=rep["candidates"]
m={ (c["edits"][0]["name"], round(c["edits"][0]["rho"],6)): c["select"] for c in cands}
base=rep["base"]["select"]
top=rep["ranking"][:5]
def better(a,b): return a["accuracy"]>b["accuracy"] or (a["accuracy"]==b["accuracy"] and a["logloss"]<b["logloss"])
print("base", base["accuracy"], round(base["logloss"],3))
for s in top:
    print(s["name"], "score %.4f"%s["score"], "rhos_by_score", s["rhos_by_score"])
    print("   ", [(r, m[(s["name"],round(r,6))]["accuracy"], round(m[(s["name"],round(r,6))]["logloss"],2)) for r in s["rhos_by_score"] if (s["name"],round(r,6)) in m])
for R in range(1,10):
    best=None
    for s in top:
        for r in s["rhos_by_score"][:R]:
            c=m.get((s["name"],round(r,6)))
            if c and (best is None or better(c,best[1])): best=((s["name"],r),c)
    chosen = best if best and better(best[1],base) else (None, base)
    print(R, chosen[0], chosen[1]["accuracy"], round(chosen[1]["logloss"],3))
print("seconds", rep["seconds"])
print("best", rep["best"])
