#!/usr/bin/env python3
"""Compares an exhaustive search with the gradient ranking (and optionally a default gradient
run) on the same task: the winner, its gradient rank, the best edit within each top-K, the
speedup. Used for docs/RESULTS.md.
Usage: scripts/compare-exhaustive.py EXHAUSTIVE.json GRADIENT_FULL_GRID.json [GRADIENT_DEFAULT.json]"""
import json,sys
exh=json.load(open(sys.argv[1])); grad=json.load(open(sys.argv[2]))
dflt=json.load(open(sys.argv[3])) if len(sys.argv)>3 else None
def key(c): return (-c['select']['accuracy'], c['select']['logloss'])
cands=sorted(exh['candidates'], key=key)
base=exh['base']['select']
print('exhaustive candidates', len(cands), 'seconds', exh['seconds'])
print('base', base['accuracy'], round(base['logloss'],3), 'test', exh['base']['test']['accuracy'])
w=cands[0]; print('winner', w['edits'][0], w['select']['accuracy'], round(w['select']['logloss'],3), 'test', exh['best']['test']['accuracy'], round(exh['best']['test']['logloss'],3))
rank={r['name']:i+1 for i,r in enumerate(grad['ranking'])}
wname=w['edits'][0]['name']
print('winner matrix gradient rank', rank[wname], 'of', len(rank))
# best accuracy per matrix
best_by_m={}
for c in cands:
    n=c['edits'][0]['name']
    if n not in best_by_m: best_by_m[n]=c
tops=sorted(best_by_m.values(), key=key)
print('top 10 matrices by exhaustive best:', [(c['edits'][0]['name'].replace('model.layers.','L'), c['edits'][0]['rho'], c['select']['accuracy'], rank[c['edits'][0]['name']]) for c in tops[:10]])
for K in [1,3,5,10,20,50]:
    topk=[r['name'] for r in grad['ranking'][:K]]
    b=min((best_by_m[n] for n in topk), key=key)
    print(f'K={K}: best within gradient top-K', b['edits'][0]['name'].replace('model.layers.','L'), b['edits'][0]['rho'], b['select']['accuracy'], 'winner in top-K:', wname in topk)
n_better=sum(1 for c in cands if c['select']['accuracy']>base['accuracy'])
print('candidates beating base accuracy:', n_better, 'of', len(cands))
acc=[c['select']['accuracy'] for c in cands]
if dflt:
    d=dflt['best']
    print('default gradient chose', d['edits'], d['select']['accuracy'], 'test', d['test']['accuracy'], 'seconds', dflt['seconds'])
    pos=sum(1 for c in cands if key(c) < (-d['select']['accuracy'], d['select']['logloss']))
    print('its position among exhaustive candidates:', pos+1)
    print('speedup total', exh['seconds']['total']/dflt['seconds']['total'], 'scan', exh['seconds']['scan']/(dflt['seconds']['scan']+dflt['seconds']['grad']+dflt['seconds']['svd']))
