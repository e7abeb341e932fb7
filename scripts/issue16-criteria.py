#!/usr/bin/env python3
"""issue16-criteria.py TABLE...: counts issue 16's criteria in scripts/sweep.sh tables.

For each table (the output of `scripts/sweep.sh [--seed N]`), per section-6 experiment
(async 0-360 s, simultaneous 20-80 s, the large-delay link), hybrid meets "all three" when
its VM-seconds are <= 0.80 x reactive-only's, <= 1.15 x its floor, and its DP loss is
<= 0.5 x reactive-only's (the ratio columns as sweep.sh prints them, 4 decimals since session 10; sweep.sh
takes the loss ratio from the exact packet counts). It also counts the criteria against the
fixed-routing floor (÷fixed) and reports the daily experiments, with "abs-ok" when the loss
meets the absolute bound proposed in session 8 (reactive-only and hybrid both <= 0.01 %).
"""
import sys

SEC6 = ([f"async-{d}s" for d in (0, 60, 120, 180, 240, 300, 360)]
        + [f"simultaneous-{d}s" for d in (20, 30, 40, 50, 60, 70, 80)]
        + ["large-delay-link"])
DAILY = ("daily-audio", "daily-mobile-zoom")


def parse(lines):
    """Rows of a sweep table: (experiment, strategy) -> the ratio columns."""
    rows = {}
    for line in lines:
        f = line.split()
        if len(f) == 9 and f[1] in ("hybrid", "reactive", "proactive"):
            rows[(f[0], f[1])] = dict(react=float(f[4]), floor=float(f[5]), fixed=float(f[6]),
                                      loss=float(f[7].rstrip('%')), lr=float(f[8]))
    return rows


def meets(rows, exp, floor="floor", absolute=False):
    h, r = rows[(exp, "hybrid")], rows[(exp, "reactive")]
    loss_ok = h["lr"] <= 0.5 or (absolute and r["loss"] <= 0.01 and h["loss"] <= 0.01)
    return h["react"] <= 0.80 and h[floor] <= 1.15 and loss_ok


def summary(name, rows):
    exps = [e for e in SEC6 if (e, "hybrid") in rows and (e, "reactive") in rows]
    ok = [e for e in exps if meets(rows, e)]
    fixed = [e for e in exps if meets(rows, e, "fixed")]
    misses = " ".join(
        f"{e}({rows[(e, 'hybrid')]['react']:.3f}/{rows[(e, 'hybrid')]['floor']:.3f}/{rows[(e, 'hybrid')]['lr']:.3f})"
        for e in exps if e not in ok)
    daily = " ".join(
        f"{e}:{'ok' if meets(rows, e) else 'miss'}{'/abs-ok' if meets(rows, e, absolute=True) else ''}"
        for e in DAILY if (e, "hybrid") in rows and (e, "reactive") in rows)
    return (f"{name}: all-three {len(ok)}/{len(exps)}, on fixed floor {len(fixed)}; "
            f"misses {misses or '-'}; {daily}")


def main(paths):
    for p in paths:
        with open(p) as f:
            print(summary(p, parse(f)))


if __name__ == "__main__":
    main(sys.argv[1:])
