#!/usr/bin/env python3
"""Splits a hybrid run's VM-seconds above the per-second floor by cause.

Input: a directory written by `go run ./scripts/floorattr EXPERIMENT OUT`
(instances.csv, counts.csv, rounds.csv) and the phases: for the
simultaneous-start experiments the change interval in seconds (the up ramp
1 -> 15 users/s ends at 14 changes, the down ramp 15 -> 6 at 23 changes
plus one call duration, 60 s; steady state after), or for any experiment
the phases' ends in seconds, comma-separated (phase i ends at the i-th
second given, the last phase runs to the end; e.g. the large-delay link's
1 -> 12 -> 6 users/s ramp with its delay change at 350 s:
150,350,600,960).

    python3 scripts/floor-attribution.py /tmp/attr-20 20
    python3 scripts/floor-attribution.py /tmp/attr-ld 150,350,600,960

Per phase and DP VNF, over the (DC, VNF) series of instances.csv:
  boot      VM-s of booting instances
  buffered  VM-s of instances in the local controller's buffer (or draining)
  work>flr  VM-s of working instances above the floor max(1, ceil(offered/capacity))
  work<flr  seconds x instances below it (negative: the load ran above capacity)
  w>trig    the part of work>flr above the floor at the DP overload trigger,
            max(1, ceil(offered / (0.9 capacity))) (the default load model's
            agents report overload above it): what is left when keeping every
            instance at or below the trigger is taken as needed
  floor     the floor's VM-s
CP VNFs (P-CSCF, S-CSCF) sit at their floor on these experiments and are left out.

Then the granularity of the rounds: the floor if each (DC, VNF) count were
set once per round interval at the interval's largest per-second need, at
100 % and at the DP targets (firewall and IDS 0.95, transcoder 0.9); and the
rounds' working targets above the largest need of their interval at the
targets ("over-planned": target - need, x the interval, when positive).

Capacities and targets are the defaults (placement/vnf, system.Defaults);
the minimum is 1 per DC (S-CSCF: its DC only, CP left out).
"""
import collections
import csv
import math
import sys

CAP = {"firewall": 35000, "ids": 20000, "transcoder": 15000}
TARGET = {"firewall": 0.95, "ids": 0.95, "transcoder": 0.9}


TRIGGER = 0.9  # the DP overload trigger of the default load model (drivers/sim)


def need(offered, cap, target=1.0):
    n = math.ceil(offered / cap / target - 1e-9) if offered > 0 else 0
    return max(1, n)


def phases(arg):
    """The phase of each second from the command line's phase argument:
    a change interval of the simultaneous-start experiments ("20"), or the
    phases' ends in seconds ("150,350,600,960": phase 1 is t <= 150, ...,
    the last one t > 960). Returns a function t -> phase name."""
    if "," not in arg:
        ci = int(arg)

        def simultaneous(t):
            if t <= 14 * ci:
                return "1 up"
            if t <= 23 * ci + 60:
                return "2 down"
            return "3 steady"
        return simultaneous
    ends = [int(x) for x in arg.split(",")]
    if ends != sorted(set(ends)) or ends[0] <= 0:
        raise ValueError("phase ends %r: must be increasing seconds > 0" % arg)
    names = ["%d (%s-%s]" % (i + 1, lo, hi) for i, (lo, hi) in enumerate(zip([0] + ends, ends + ["end"]))]

    def explicit(t):
        for i, e in enumerate(ends):
            if t <= e:
                return names[i]
        return names[-1]
    return explicit


def attribute(series, counts, phase):
    """Per (phase, VNF), (phase, "*"), ("all", VNF) and ("all", "*"): VM-s
    booting, buffered (or draining), working above the floor, working below
    it (<= 0), the floor, and working above the floor at TRIGGER. series:
    (dc, vnf) -> t -> (offered, booting, active); counts: (t, dc, vnf) ->
    counts.csv row."""
    agg = collections.defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for (dc, v), s in series.items():
        for t, (off, boot, act) in s.items():
            c = counts.get((t, dc, v))
            buf = int(c["buffered"]) + int(c["draining"]) if c else 0
            f = need(off, CAP[v])
            work = act - buf
            row = (boot, buf, max(0, work - f), min(0, work - f), f,
                   max(0, work - need(off, CAP[v], TRIGGER)))
            p = phase(t)
            for k in ((p, v), (p, "*"), ("all", v), ("all", "*")):
                a = agg[k]
                for i, x in enumerate(row):
                    a[i] += x
    return agg


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: floor-attribution.py RUNDIR CHANGE_INTERVAL_SECONDS|PHASE_END,PHASE_END,...")
    d = sys.argv[1]
    try:
        phase = phases(sys.argv[2])
    except ValueError as e:
        sys.exit("floor-attribution.py: %s" % e)
    counts = {}
    with open(d + "/counts.csv") as f:
        for r in csv.DictReader(f):
            counts[(int(r["t"]), r["dc"], r["vnf"])] = r
    series = collections.defaultdict(dict)  # (dc, vnf) -> t -> (offered, booting, active)
    vm = 0
    with open(d + "/instances.csv") as f:
        for r in csv.DictReader(f):
            vm += int(r["booting"]) + int(r["active"])
            if r["vnf"] in CAP:
                series[(r["dc"], r["vnf"])][int(r["t"])] = (float(r["offered"]), int(r["booting"]), int(r["active"]))
    with open(d + "/rounds.csv") as f:
        rounds = [int(float(r["t"])) for r in csv.DictReader(f) if float(r["t"]) > 0]

    agg = attribute(series, counts, phase)
    w = max(9, max(len(k[0]) for k in agg))
    print(f"{'phase':{w}s} {'vnf':10s} {'boot':>6s} {'buffered':>8s} {'work>flr':>8s} {'work<flr':>8s} {'floor':>7s} {'w>trig':>7s}")
    for k in sorted(agg):
        a = agg[k]
        print(f"{k[0]:{w}s} {k[1]:10s} {a[0]:6d} {a[1]:8d} {a[2]:8d} {a[3]:8d} {a[4]:7d} {a[5]:7d}")

    end = max(max(s) for s in series.values())
    bounds = [0] + rounds + [end]
    gran = {}
    for target in (False, True):
        per_s = per_iv = 0
        for (dc, v), s in series.items():
            for i in range(len(bounds) - 1):
                xs = [need(s[t][0], CAP[v], TARGET[v] if target else 1.0)
                      for t in range(bounds[i] + 1, bounds[i + 1] + 1) if t in s]
                if xs:
                    per_s += sum(xs)
                    per_iv += max(xs) * len(xs)
        gran[target] = (per_s, per_iv)
    fl = gran[False][0]
    print(f"DP floor {fl} VM-s; once per round interval at its largest need: {gran[False][1]} ({gran[False][1] / fl:.3f} x); "
          f"at the DP targets: per second {gran[True][0]} ({gran[True][0] / fl:.3f} x), "
          f"once per interval {gran[True][1]} ({gran[True][1] / fl:.3f} x)")

    over = collections.Counter()
    for i, t0 in enumerate(rounds):
        t1 = rounds[i + 1] if i + 1 < len(rounds) else end
        for (dc, v), s in series.items():
            c = counts.get((t0 + 1, dc, v))
            xs = [need(s[t][0], CAP[v], TARGET[v]) for t in range(t0 + 1, t1 + 1) if t in s]
            if c and xs and int(c["target"]) > max(xs):
                over[v] += (int(c["target"]) - max(xs)) * (t1 - t0)
    print(f"rounds' targets above their interval's largest need at the DP targets: {sum(over.values())} VM-s {dict(over)}")


if __name__ == "__main__":
    main()
