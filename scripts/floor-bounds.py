#!/usr/bin/env python3
"""Lower bounds on VM-seconds for a sweep output (scripts/sweep.sh, SWEEP_OUT):
per experiment, from the reactive-only run's instances.csv (offered load per
second, DC and VNF), the per-second floor Σ max(min, ⌈offered/capacity⌉) and
three tighter bounds as ratios to it: +boot (every instance needed within the
next 30 s boot delay must already exist), @trigger (no instance above its
overload trigger: ρ 0.9 DP, 0.7 CP), @trigger+boot (both), and two bounds
for the paper's architecture, where only a proactive round removes an instance
(reactive scaling only adds): +rounds (@trigger+boot, and an instance a
second needs runs at least until the first round after that second; the
round times are read from the hybrid run's rounds.csv) and +drain (+rounds,
and a removed instance runs until the flows pinned to it end: calls last
60 s, so it runs 60 s after the round that removes it). The +drain bound
assumes perfect foresight, no forecast error and fractional packing of
flows per second.

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
    def rounds(u, boot, drain):
        rp=os.path.join(root,exp,'hybrid','rounds.csv')
        rt=sorted(float(r['t']) for r in csv.DictReader(open(rp)))
        def last_round(x):  # the last round time <= x (-inf if none)
            best=-1e18
            for r in rt:
                if r<=x: best=r
            return best
        lo=[last_round(t-drain) for t in range(1,T+1)]
        s=0
        for k,v in off.items():
            need=[max(mins[k], math.ceil(v.get(t,0)/(u[k[1]]*cap[k[1]])-1e-9)) for t in range(1,T+1)]
            nb=[max(need[t:t+boot+1]) for t in range(T)]
            for t in range(T):
                a=max(0, math.floor(lo[t]))  # seconds s with s > the round, index s-1
                s+=max(nb[a:t+1]) if a<=t else nb[t]
        return s
    one={k:1 for k in cap}
    f=fl(one,0); fb=fl(one,30); ft=fl(trig,0); ftb=fl(trig,30)
    line="%-20s floor %6d  +boot %.3f  @trigger %.3f  @trigger+boot %.3f" % (exp, f, fb/f, ft/f, ftb/f)
    if os.path.exists(os.path.join(root,exp,'hybrid','rounds.csv')):
        line+="  +rounds %.3f  +drain %.3f" % (rounds(trig,30,0)/f, rounds(trig,30,60)/f)
    print(line)
