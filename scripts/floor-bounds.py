#!/usr/bin/env python3
"""Lower bounds on VM-seconds, with and without a data-plane loss budget, for
a sweep output (scripts/sweep.sh, SWEEP_OUT).

  scripts/floor-bounds.py SWEEP_OUT [--run hybrid] [--trigger 0.9]
  scripts/floor-bounds.py --legacy SWEEP_OUT   # the session-5 zero-loss bounds
  scripts/floor-bounds.py --check SWEEP_OUT    # each run's VM-s >= its own-loss bound
  scripts/floor-bounds.py --flow-age SWEEP_OUT # firewall (b,0) with the flow-age floor

Python 3 standard library only. Tests: python3 scripts/test_floor_bounds.py.

THE MODEL (drivers/sim, drivers/sim/traffic, controller/simulation)
-------------------------------------------------------------------
* Series. One series per (DC, VNF): per second t = 1..T of the traffic, the
  load the run offered to that DC's instances of that VNF (instances.csv
  `offered`: transactions/s for P-/S-CSCF, packets/s for firewall, IDS,
  transcoder). Capacities mu (Table 2): P-CSCF 500, S-CSCF 200, firewall
  35000, IDS 20000, transcoder 15000. Minimum working instances m: every VNF
  1 per DC, the S-CSCF only in its DC (tokyo / dc0).
* Loss, per instance and second (sim.Serve): served = min(lambda, mu), lost =
  max(0, lambda - mu); memoryless (no backlog). An instance that is not active
  (booting, gone) carries nothing; a flow pinned to a gone instance loses all
  its packets. The DP chain is firewall -> IDS -> transcoder, stage by stage:
  stage s is offered what stage s-1 delivered, so a packet is lost at most
  once, and the run's total DP lost packets = sum over DP instances of lost
  (= seconds.csv dp_lost_pkts when no flow is dropped). CP loss (SIP
  transactions) is not DP loss.
* `--overload-at-capacity` changes only when an instance *reports* overload
  (CPU / memory thresholds at rho 1 instead of 0.9 DP / 0.7 CP), i.e. the
  controllers' trigger, not the loss: loss starts at rho > 1 either way. The
  bounds below assume no trigger, so they hold for both readings (their loads
  and budgets differ because the runs differ).
* Flows: a call is 2 flows of 50 pkt/s for 60 s, pinned to one instance per
  DP stage for their whole life; new flows go to working (in-service)
  instances only; a buffered or draining instance keeps its old flows.
* VM-seconds (summary.csv vm_seconds): sum over traffic seconds and series of
  booting + active VMs, sampled once a second (buffered and draining VMs are
  active VMs). An instance launched at s is active from s + 30 s; it is
  sampled booting at least 29 times (30 unless the launch falls between a
  sample and the timer at the same instant); instances launched before the
  traffic (the minimum, a warm start) cost nothing before second 1.
* floor_vm_seconds (summary.csv) is per run: sum over seconds and series of
  max(m, ceil(offered / mu)) computed on THAT run's offered loads, which depend
  on its routing (which DC each stage runs in) and, for IDS and transcoder, on
  its upstream losses. sweep.sh's "÷floor" divides each strategy's VM-s by its
  own floor; the issue's "hybrid <= 1.15 x the floor" is hybrid's VM-s over
  hybrid's floor. So the bounds here are computed on the hybrid run's loads
  (--run picks another) and divided by that run's floor.

THE BOUNDS (per run; "schedule" = instance counts over time, same loads)
------------------------------------------------------------------------
Budget B: 0.5 x the reactive-only run's lost DP packets (its seconds.csv),
and B = 0. Every strategy of an experiment is offered the same DP packets
(same seed), so "loss rate <= 0.5 x reactive-only's" is "lost <= B".

Loss relaxation (valid for every schedule with this routing). Fix a DP stage
s. The flows through stage s in DC d together offer L_sd(t) >= the recorded
offered load (equal for the firewall; for IDS/transcoder the recorded load is
after the run's upstream losses, and the entry load is larger). At most
mu * a_sd(t) of those packets pass stage s (a = active instances, any packing
of flows), and those flows partition all flows, so the run's lost packets in
second t >= sum_d max(0, L_sd(t) - mu a_sd(t)) =: e_s(t), for EVERY stage s.
Hence loss <= B implies sum_t e_s(t) <= B for each stage s separately: the
relaxed problem has one budget per stage (it lets each stage lose B, a packet
counted once per stage — the true total is at least the largest stage sum,
not their sum), and the stages decouple.

Per series the cost of a count trajectory a(1..T) >= m is exactly
  sum_t a(t) + sum over increases at t of (a(t) - a(t-1)) * min(P, t-1)
with P = 29 booting samples (a launch costs its boot seconds inside the
window; a(1) is free), given WHEN a decrease may happen: only rule (a)/(b)/(c)
below differ, as the set of seconds at which a count may fall. Counting the
capacity of buffered and draining instances as carrying load is a relaxation
(they carry only old flows), so every real schedule maps to a count
trajectory with no more cost and no more relaxed loss.

Lagrangian: for a stage s and any lambda >= 0,
  min over feasible schedules of VM-s  >=  min over ALL schedules of
  [ VM-s + lambda (sum_t e_s(t) - B) ]  =  sum_d DP_d(lambda) - lambda B
(a feasible schedule has loss - B <= 0, so adding lambda (loss - B) cannot
raise its cost; the min over all schedules is at most that). The right side
separates per series and is computed exactly by dynamic programming over the
instance count (tests: brute force over instance lifetimes). Any lambda gives a
valid bound; the script maximises over lambda (bisection on the subgradient
sum_t e_s(t) - B, keeping the best value seen). B = 0: lambda = infinity, i.e.
the exact zero-loss optimum (a(t) >= ceil(L/mu)). The CP series count only
their minimum m (valid whatever the SIP loss; the script says if any CP load
ever needs more). The total is rounded up (VM-s are integers).

Decrease rules:
 (a) physics: a count may fall at any second (instant, free scale-in; with
     perfect foresight a fractional packer routes new flows away from an
     instance 60 s before it goes, so pinned calls cost nothing extra).
 (b) this architecture (controller/local with the defaults): only a proactive
     round removes. The round (all five steps at one virtual instant, its
     rounds.csv t) moves instances to the buffer; the buffer trim (or tau)
     pops them at a later round entry, and a popped instance is destroyed at
     once with no flows, else when its flows reach 0 (all started before its
     buffering round r <= pop - I, so they end by r + 60 <= pop + 60 - I);
     the drain timeout and tau expire at round times. Reactive scaling only
     adds. So a VM disappears only in [r, r + max(0, 60 - I) + 2] for a round
     time r (I = the scaling interval; +2 s for the stats sample that sees
     flows = 0). (Main a4b80e8's defaults. With i16a's TrimEmpty a buffered
     VM goes once its calls end, within r + 62: the windows then cover every
     second and (b) = (a).)
 (c) (b) plus a local controller that may also take an instance out of
     service between rounds (engineer i16a's ScaleIn: one per VNF and 10 s
     when the measured load fits on one fewer at 0.8 x the trigger; it
     drains its calls). If such a VM may be destroyed as soon as its calls
     end, a count may fall at any second: with the capacity of draining VMs
     counted and perfect foresight a drain wait only moves the decision
     earlier, and the load condition is policy, so (c) = (a) here; if it
     still leaves through the round's buffer trim, (c) = (b). Not computed
     separately.

OUTPUT, per experiment (ratios to the run's floor): a,0 / a,B / b,0 / b,B =
rule (a) or (b) with budget 0 or B; (c) equals (a) when a between-round
removal may destroy the VM as soon as its flows end, (b) when the VM still
leaves only through the round's buffer trim. b,B* is indicative only (one
budget shared by all DP series with the loads held at the run's: not a
bound, a packet lost upstream would not load the later stages). b@trig is
a policy premise, not physics: (b), no loss, and no DP instance ever above
--trigger (default 0.9, the default load model's overload trigger; 1 with
--overload-at-capacity). Then the run's VM-s, 0.8 x reactive-only's VM-s,
run VM-s / (b,B); "no" = provably out of reach (bound above the limit),
"open" = not excluded by this bound. A recomputed floor that differs from
summary.csv's is reported on stderr (it checks the loads and minimums read). goal(b): VM-s <= min(1.15 x floor,
0.80 x reactive-only's VM-s) with loss <= B under rule (b).

What the bounds do NOT assume: the overload trigger, a forecast, whole-flow
packing, the routing rule beyond the run's per-DC loads.
"""
import csv
import math
import os
import sys
from collections import defaultdict

CAP = {'P-CSCF': 500, 'S-CSCF': 200, 'firewall': 35000, 'ids': 20000, 'transcoder': 15000}
DP_STAGES = ('firewall', 'ids', 'transcoder')
TRIGGER = 0.9  # DP overload trigger of the default load model
BOOT_SAMPLES = 29  # booting samples of a launch, at least (see above)
CALL_SECONDS = 60
INF = float('inf')


def need(load, mu):
    """ceil(load / mu) with the simulator's 1e-9 slack (cost.go floorVMs)."""
    return int(math.ceil(load / mu - 1e-9)) if load > 0 else 0


def series_dp(loads, mu, m, lam, dec_ok, boot=BOOT_SAMPLES, least=None):
    """min over count trajectories a(1..T) >= m of
    sum_t a(t) + boot costs + lam * sum_t max(0, loads[t] - mu a(t)),
    decreases only where dec_ok[t] (t = 0-based second index; dec_ok[0]
    unused), and a(t) >= least[t] if given. lam = INF: no loss allowed.
    Returns (objective, vm_s, loss) of a minimiser (ties: less loss)."""
    T = len(loads)
    if T == 0:
        return 0.0, 0.0, 0.0
    top = max([m] + [need(x, mu) for x in loads] + list(least or []))
    states = range(m, top + 1)

    def stage_cost(t, a):
        if least is not None and a < least[t]:
            return None
        exc = loads[t] - mu * a
        if exc <= 1e-9 * mu:
            return 0.0, 0.0
        if lam == INF:
            return None
        return lam * exc, exc

    # V[a - m] = (objective, loss, vm_s)
    V = []
    for a in states:
        c = stage_cost(0, a)
        V.append((INF, 0.0, 0.0) if c is None else (a + c[0], c[1], float(a)))
    n = len(V)
    for t in range(1, T):
        pen = min(boot, t)  # first active at second t+1: boot samples t+1-boot .. t inside 1..T
        # from a' <= a: V[a'] + pen (a - a'); prefix minimum of V[a'] - pen a'
        pref = [None] * n
        best = None
        for i in range(n):
            a = m + i
            o, l, v = V[i]
            cand = (o - pen * a, l, v - pen * a)
            if best is None or cand < best:
                best = cand
            pref[i] = best
        suf = [None] * (n + 1)
        if dec_ok[t]:
            best = (INF, 0.0, 0.0)
            for i in range(n - 1, -1, -1):
                suf[i + 1] = best
                if V[i] < best:
                    best = V[i]
        NV = []
        for i in range(n):
            a = m + i
            o, l, v = pref[i]
            cand = (o + pen * a, l, v + pen * a)
            if dec_ok[t] and suf[i + 1] < cand:
                cand = suf[i + 1]
            c = stage_cost(t, a)
            if c is None or cand[0] == INF:
                NV.append((INF, 0.0, 0.0))
            else:
                NV.append((cand[0] + a + c[0], cand[1] + c[1], cand[2] + a))
        V = NV
    o, l, v = min(V)
    return o, v, l


def stage_bound(series, B, dec_ok, boot=BOOT_SAMPLES, iters=20):
    """Lower bound on sum of VM-s over `series` [(loads, mu, m)] whose summed
    relaxed loss is <= B: max over lambda of sum DP(lambda) - lambda B.
    Returns (bound, lambda used)."""
    def g(lam):
        tot_o = tot_l = 0.0
        for loads, mu, m in series:
            o, v, l = series_dp(loads, mu, m, lam, dec_ok, boot)
            tot_o += o
            tot_l += l
        return tot_o - (0.0 if lam == INF else lam * B), tot_l

    zero, _ = g(INF)
    if B <= 0:
        return zero, INF
    best, best_lam = g(0.0)[0], 0.0
    lo, hi = -12.0, 3.0  # log10 lambda (VM-s per packet or transaction)
    for _ in range(iters):
        mid = (lo + hi) / 2
        val, loss = g(10 ** mid)
        if val > best:
            best, best_lam = val, 10 ** mid
        if loss > B:
            lo = mid  # subgradient loss - B > 0: the maximiser is at larger lambda
        else:
            hi = mid
    # best <= the optimum <= zero (a zero-loss schedule is feasible)
    return min(best, zero), best_lam


def new_flow_starts(loads):
    """The load of the flows that started in each second, from a stage's
    per-second load when every flow lasts exactly CALL_SECONDS samples and
    nothing upstream is lost (the firewall: its offered load is the entry
    load): f(t) = L(t) - L(t-1) + f(t-60), no flow before second 1."""
    f = []
    for t, x in enumerate(loads):
        f.append(x - (loads[t - 1] if t else 0.0) + (f[t - CALL_SECONDS] if t >= CALL_SECONDS else 0.0))
    return f


def flow_age_least(loads, mu, rounds, interval):
    """Per second, the fewest VMs rule (b) allows with no loss, from the flow
    age (the (b') check; B = 0 only): the calls started between two rounds
    r' < r went to instances working when they started, which stay working
    until the round r (working instances are removed only by a round) and,
    buffered at r, stay VMs until the next round entry r + I (the trim pops
    a head after a whole interval). So in [r, r + I) there are at least
    ceil(N / mu) VMs, N = the load of the calls started in (r', r) — all
    still running at r-, calls last 60 s > I."""
    T = len(loads)
    f = new_flow_starts(loads)
    least = [0] * T
    rs = sorted(rounds)
    for prev, r in zip(rs, rs[1:]):
        lo, hi = math.ceil(prev) + 1, math.floor(r) - 1  # seconds strictly inside (prev, r)
        n = sum(f[u - 1] for u in range(max(1, lo), min(T, hi) + 1))
        k = need(n, mu)
        for sec in range(max(1, math.ceil(r)), min(T, math.ceil(r + interval) - 1) + 1):
            least[sec - 1] = max(least[sec - 1], k)
    return least


def flow_age(root):
    """Firewall stage only (exact entry loads), rule (b), no loss: the bound
    with and without the flow-age floor of flow_age_least."""
    for exp in sorted(os.listdir(root)):
        if not os.path.exists(os.path.join(root, exp, 'hybrid', 'instances.csv')):
            continue
        T, series = read_run(root, exp, 'hybrid')
        rt = round_times(root, exp)
        iv = scaling_interval(rt)
        ok = dec_rule(T, 'b', rt, iv)
        plain = aged = 0.0
        for (dc, vnf), (L, mu, m) in series.items():
            if vnf != 'firewall':
                continue
            plain += series_dp(L, mu, m, INF, ok)[1]
            aged += series_dp(L, mu, m, INF, ok, least=flow_age_least(L, mu, rt, iv))[1]
        print("%-18s firewall (b,0) %8.0f  with flow age %8.0f  (+%.2f %%)" % (exp, plain, aged, 100 * (aged / plain - 1)))
        sys.stdout.flush()


def dec_rule(T, rule, rounds=(), interval=50.0):
    """dec_ok[t] for seconds t+1, t = 0..T-1 (see the docstring)."""
    if rule in ('a', 'c-any'):
        return [True] * T
    ok = [False] * T
    window = max(0.0, CALL_SECONDS - interval) + 2
    for r in rounds:
        lo, hi = math.floor(r), math.ceil(r + window)
        for sec in range(max(1, lo), min(T, hi) + 1):
            ok[sec - 1] = True
    return ok


def read_run(root, exp, run):
    p = os.path.join(root, exp, run, 'instances.csv')
    off = defaultdict(dict)
    T = 0
    dcs = set()
    for r in csv.DictReader(open(p)):
        t = int(r['t'])
        T = max(T, t)
        dcs.add(r['dc'])
        off[(r['dc'], r['vnf'])][t] = float(r['offered'])
    scscf_dc = 'tokyo' if 'tokyo' in dcs else 'dc0'
    series = {}
    for (dc, vnf), v in off.items():
        m = 1 if (vnf != 'S-CSCF' or dc == scscf_dc) else 0
        series[(dc, vnf)] = ([v.get(t, 0.0) for t in range(1, T + 1)], CAP[vnf], m)
    return T, series


def summary(root, exp, run):
    rows = list(csv.DictReader(open(os.path.join(root, exp, 'summary.csv'))))
    return {r['strategy']: r for r in rows}[run]


def lost_packets(root, exp, run):
    return sum(float(r['dp_lost_pkts']) for r in csv.DictReader(open(os.path.join(root, exp, run, 'seconds.csv'))))


def round_times(root, exp):
    p = os.path.join(root, exp, 'hybrid', 'rounds.csv')
    return sorted(float(r['t']) for r in csv.DictReader(open(p)))


def scaling_interval(rt):
    """The scaling interval I: the shortest gap between rounds (> 1 s)."""
    steps = [b - a for a, b in zip(rt, rt[1:]) if b - a > 1]
    return min(steps) if steps else 50.0


def bounds_for(root, exp, run='hybrid', trigger=TRIGGER):
    T, series = read_run(root, exp, run)
    floor = sum(sum(max(m, need(x, mu)) for x in loads) for loads, mu, m in series.values())
    rt = round_times(root, exp)
    interval = scaling_interval(rt)
    budget = 0.5 * lost_packets(root, exp, 'reactive')
    cp = sum(m * T for (dc, vnf), (loads, mu, m) in series.items() if vnf not in DP_STAGES)
    cp_over = [k for k, (loads, mu, m) in series.items() if k[1] not in DP_STAGES and any(need(x, mu) > m for x in loads)]
    out = {'T': T, 'floor': floor, 'budget': budget, 'interval': interval, 'cp_over_min': cp_over}
    rules = {'a': dec_rule(T, 'a'), 'b': dec_rule(T, 'b', rt, interval)}
    for name, ok in rules.items():
        for bname, B in (('0', 0.0), ('B', budget)):
            tot = cp
            for st in DP_STAGES:
                ss = [v for k, v in series.items() if k[1] == st]
                tot += stage_bound(ss, B, ok)[0]
            out[name + bname] = math.ceil(tot - 1e-6)
    # indicative, not a bound: one budget shared by all DP series, their
    # loads held at the run's (true only if a packet lost upstream still
    # loaded the stages after it)
    dp = [v for k, v in series.items() if k[1] in DP_STAGES]
    # policy, not physics: (b) with no instance ever above its overload
    # trigger (rho 0.9 DP: the default load model's reactive trigger), so
    # no loss; the session-5 argument's premise, without its drain part
    trig = [(L, mu * trigger, m) for L, mu, m in dp]
    out['bT0'] = math.ceil(cp + stage_bound(trig, 0.0, rules['b'])[0] - 1e-6)
    out['bS'] = math.ceil(cp + stage_bound(dp, budget, rules['b'])[0] - 1e-6)
    return out


def legacy(root):
    """The session-5 zero-loss bounds (+boot, @trigger, +rounds, +drain), kept
    to reproduce docs/reproduction.md's session-5 table."""
    trig = {'P-CSCF': 0.7, 'S-CSCF': 0.7, 'firewall': 0.9, 'ids': 0.9, 'transcoder': 0.9}
    for exp in sorted(os.listdir(root)):
        p = os.path.join(root, exp, 'reactive', 'instances.csv')
        if not os.path.exists(p):
            continue
        off = defaultdict(dict)
        T = 0
        mins = {}
        for r in csv.DictReader(open(p)):
            t = int(r['t'])
            T = max(T, t)
            k = (r['dc'], r['vnf'])
            mins[k] = 1 if (r['vnf'] != 'S-CSCF' or r['dc'] in ('tokyo', 'dc0')) else 0
            off[k][t] = float(r['offered'])

        def needs(u, k, v):
            return [max(mins[k], math.ceil(v.get(t, 0) / (u[k[1]] * CAP[k[1]]) - 1e-9)) for t in range(1, T + 1)]

        def fl(u, boot):
            s = 0
            for k, v in off.items():
                nd = needs(u, k, v)
                for t in range(T):
                    s += max(nd[t:t + boot + 1]) if boot else nd[t]
            return s

        def rounds(u, boot, drain):
            rt = round_times(root, exp)

            def last_round(x):
                best = -1e18
                for r in rt:
                    if r <= x:
                        best = r
                return best
            lo = [last_round(t - drain) for t in range(1, T + 1)]
            s = 0
            for k, v in off.items():
                nd = needs(u, k, v)
                nb = [max(nd[t:t + boot + 1]) for t in range(T)]
                for t in range(T):
                    a = max(0, math.floor(lo[t]))
                    s += max(nb[a:t + 1]) if a <= t else nb[t]
            return s
        one = {k: 1 for k in CAP}
        f = fl(one, 0)
        line = "%-20s floor %6d  +boot %.3f  @trigger %.3f  @trigger+boot %.3f" % (
            exp, f, fl(one, 30) / f, fl(trig, 0) / f, fl(trig, 30) / f)
        if os.path.exists(os.path.join(root, exp, 'hybrid', 'rounds.csv')):
            line += "  +rounds %.3f  +drain %.3f" % (rounds(trig, 30, 0) / f, rounds(trig, 30, 60) / f)
        print(line)


def check(root):
    """Consistency on real runs: rule (b) with each run's OWN lost packets as
    the budget must not exceed that run's VM-s (every strategy obeys (b):
    reactive-only never removes, the others remove through rounds)."""
    bad = 0
    for exp in sorted(os.listdir(root)):
        if not os.path.exists(os.path.join(root, exp, 'summary.csv')):
            continue
        rt = round_times(root, exp)
        cells = []
        for run in ('hybrid', 'reactive', 'proactive'):
            T, series = read_run(root, exp, run)
            own = lost_packets(root, exp, run)
            ok = dec_rule(T, 'b', rt, scaling_interval(rt))
            tot = sum(m * T for (dc, vnf), (L, mu, m) in series.items() if vnf not in DP_STAGES)
            for st in DP_STAGES:
                tot += stage_bound([v for k, v in series.items() if k[1] == st], own, ok)[0]
            vm = float(summary(root, exp, run)['vm_seconds'])
            bad += tot > vm + 1e-6
            cells.append("%s %.0f <= %.0f %s" % (run, tot, vm, 'ok' if tot <= vm + 1e-6 else 'VIOLATED'))
        print("%-18s %s" % (exp, '; '.join(cells)))
        sys.stdout.flush()
    return 1 if bad else 0


def main(argv):
    args = list(argv)
    if args and args[0] == '--legacy':
        legacy(args[1])
        return 0
    if args and args[0] == '--check':
        return check(args[1])
    if args and args[0] == '--flow-age':
        flow_age(args[1])
        return 0
    run = 'hybrid'
    if '--run' in args:
        i = args.index('--run')
        run = args[i + 1]
        del args[i:i + 2]
    trigger = TRIGGER
    if '--trigger' in args:
        i = args.index('--trigger')
        trigger = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    root = args[0]
    print("bounds on the %s run's loads; B = 0.5 x reactive-only's lost DP packets; ratios to that run's floor" % run)
    print("%-18s %7s %9s %6s %6s %6s %6s %6s %7s | %6s %6s %6s | %-9s %-9s %-9s %-9s" % (
        'experiment', 'floor', 'B pkts', 'a,0', 'a,B', 'b,0', 'b,B', 'b,B*', 'b@trig', 'run', '0.8rea', 'run/bB',
        '(a)≤1.15', '(b)≤1.15', 'goal(b)', 'b@trig'))
    for exp in sorted(os.listdir(root)):
        if not os.path.exists(os.path.join(root, exp, run, 'instances.csv')):
            continue
        o = bounds_for(root, exp, run, trigger)
        s = summary(root, exp, run)
        rea = float(summary(root, exp, 'reactive')['vm_seconds'])
        fl = float(s['floor_vm_seconds'])
        vm = float(s['vm_seconds'])
        if abs(fl - o['floor']) > 0.5:
            print("%s: floor recomputed %d != summary.csv %d" % (exp, o['floor'], fl), file=sys.stderr)
        cap = min(1.15 * fl, 0.80 * rea)

        def reach(b, lim):
            return 'no' if b > lim else 'open'
        print("%-18s %7d %9.0f %6.3f %6.3f %6.3f %6.3f %6.3f %7.3f | %6.3f %6.3f %6.3f | %-9s %-9s %-9s %-9s" % (
            exp, fl, o['budget'], o['a0'] / fl, o['aB'] / fl, o['b0'] / fl, o['bB'] / fl, o['bS'] / fl, o['bT0'] / fl,
            vm / fl, 0.8 * rea / fl, vm / o['bB'],
            reach(o['aB'], 1.15 * fl), reach(o['bB'], 1.15 * fl), reach(o['bB'], cap), reach(o['bT0'], 1.15 * fl)))
        if o['cp_over_min']:
            print("  note: CP series above their minimum somewhere: %s (counted at the minimum)" % o['cp_over_min'])
        sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
