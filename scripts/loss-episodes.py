#!/usr/bin/env python3
"""Data-plane loss episodes of a simulator run, per datacenter and VNF.

Reads a run's instances.csv (`ims-orch simulate --out DIR` writes DIR/instances.csv with one
strategy, DIR/<strategy>/instances.csv with several; a sweep's DIR/<experiment>/<strategy>/) and
prints every episode: the seconds a (DC, VNF) lost packets, consecutive seconds with gaps of at most
--gap seconds joined, and the packets lost in it. The CSCFs (control plane) are left out. Used for
docs/reproduction.md "Session 11: daily-audio loss":

    python3 scripts/loss-episodes.py /tmp/s11-base-1/daily-audio/hybrid
    python3 scripts/loss-episodes.py RUN_A RUN_B      # one block per run, then the totals
"""
import argparse
import csv
import os
import sys


def episodes(rows, gap=3):
    """Episodes from instances.csv records (dicts with t, dc, vnf, lost): a list of
    (dc, vnf, first second, last second, packets lost), sorted by (dc, vnf, first second)."""
    open_eps = {}
    out = []
    for r in rows:
        vnf = r["vnf"]
        if vnf.endswith("CSCF"):
            continue
        lost = float(r["lost"])
        if lost <= 0:
            continue
        key, t = (r["dc"], vnf), int(float(r["t"]))
        e = open_eps.get(key)
        if e is not None and t - e[3] <= gap:
            e[3], e[4] = t, e[4] + lost
            continue
        e = [key[0], vnf, t, t, lost]
        open_eps[key] = e
        out.append(e)
    return sorted((tuple(e) for e in out), key=lambda e: (e[0], e[1], e[2]))


def csv_path(run):
    """The instances.csv of a run directory (or the file itself)."""
    if os.path.isfile(run):
        return run
    p = os.path.join(run, "instances.csv")
    if os.path.isfile(p):
        return p
    raise SystemExit(f"loss-episodes: no instances.csv in {run} (give a strategy's directory)")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run directories (or instances.csv files)")
    ap.add_argument("--gap", type=int, default=3, help="join lossy seconds at most this far apart (default 3)")
    a = ap.parse_args(argv)
    if a.gap < 0:
        raise SystemExit("loss-episodes: --gap must be ≥ 0")
    totals = []
    for run in a.runs:
        with open(csv_path(run), newline="") as f:
            eps = episodes(csv.DictReader(f), a.gap)
        total = sum(e[4] for e in eps)
        totals.append((run, total))
        print(f"== {run}")
        for dc, vnf, t0, t1, lost in eps:
            print(f"{dc:12s} {vnf:12s} {t0:5d}–{t1:5d} s {lost:10.0f}")
        print(f"{'total':12s} {'':12s} {'':9s} {total:10.0f}")
    if len(totals) > 1:
        for run, total in totals:
            print(f"{total:10.0f}  {run}")


if __name__ == "__main__":
    main(sys.argv[1:])
