#!/usr/bin/env python3
"""Lower bounds on VM-seconds for a sweep output (scripts/sweep.sh, SWEEP_OUT):
per experiment, from the reactive-only run's instances.csv (offered load per
second, DC and VNF), the per-second floor Σ max(min, ⌈offered/capacity⌉) and
three tighter bounds as ratios to it: +boot (every instance needed within the
next 30 s boot delay must already exist), @trigger (no instance above its
overload trigger: ρ 0.9 DP, 0.7 CP), @trigger+boot (both).

  scripts/floor-bounds.py SWEEP_OUT
"""
import csv, math, sys, collections, os
cap={'P-CSCF':500,'S-CSCF':200,'firewall':35000,'ids':20000,'transcoder':15000}
trig={'P-CSCF':0.7,'S-CSCF':0.7,'firewall':0.9,'ids':0.9,'transcoder':0.9}
root=sys.argv[1]
for exp in sorted(os.listdir(root)):
    p=os.path.join(root,exp,'reactive','instances.csv')
    if not os.path.exists(p): continue
    off=collections.defaultdict(dict); T=0; mins={}
    for r in csv.DictReader(open(p)):
        t=int(r['t']); T=max(T,t); k=(r['dc'],r['vnf'])
        mins[k] = 1 if (r['vnf']!='S-CSCF' or r['dc'] in ('tokyo','dc0')) else 0
        off[k][t]=float(r['offered'])
    def fl(u, boot):
        s=0
        for k,v in off.items():
            need=[max(mins[k], math.ceil(v.get(t,0)/(u[k[1]]*cap[k[1]])-1e-9)) for t in range(1,T+1)]
            for t in range(T):
                s+= max(need[t:t+boot+1]) if boot else need[t]
        return s
    one={k:1 for k in cap}
    f=fl(one,0); fb=fl(one,30); ft=fl(trig,0); ftb=fl(trig,30)
    print("%-20s floor %6d  +boot %.3f  @trigger %.3f  @trigger+boot %.3f" % (exp, f, fb/f, ft/f, ftb/f))
