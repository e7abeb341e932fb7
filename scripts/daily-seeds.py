#!/usr/bin/env python3
"""daily-seeds.py NAME YAMLDIR [STRATEGY]: daily-audio and daily-mobile-zoom from YAMLDIR, seeds
FIRST..FIRST+NSEEDS-1 (default 1..20), two simulations at a time under nice; keeps each run's summary.csv in
OUT/NAME/<experiment>/sN (OUT default /tmp/daily-seeds) and writes OUT/NAME.txt (per seed and Σ).
Run NAME=reactive with STRATEGY reactive first: the other runs compare their losses with it.
BIN: the binary (default bin/ims-orch). docs/reproduction.md "Session 12: declared profile in the
global policy". A kept summary.csv is reused only when its run had the same binary, yaml and
strategy (a hash of the three, in sN/key); otherwise the seed runs again. A failing run's stderr
is printed.
"""
import csv, hashlib, os, shutil, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
name, ydir = sys.argv[1], sys.argv[2]
strat = sys.argv[3] if len(sys.argv) > 3 else 'hybrid'
BIN = os.environ.get('BIN', 'bin/ims-orch')
T = os.environ.get('OUT', '/tmp/daily-seeds')
N = int(os.environ.get('NSEEDS', '20'))
F = int(os.environ.get('FIRST', '1'))
def key(exp):
    h = hashlib.sha256()
    for f in (BIN, f'{ydir}/{exp}.yaml'):
        h.update(open(f, 'rb').read())
    h.update(strat.encode())
    return h.hexdigest()
def one(job):
    exp, s = job
    o = f'{T}/{name}/{exp}/s{s}'
    k = key(exp)
    kept = os.path.exists(o + '/summary.csv') and os.path.exists(o + '/key') and open(o + '/key').read() == k
    if not kept:
        tmp = o + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        r = subprocess.run(['nice', BIN, 'simulate', '-f', f'{ydir}/{exp}.yaml', '--strategy', strat, '-q', '--seed', str(s), '--out', tmp], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f'{exp} seed {s}: {BIN} simulate failed:\n{r.stderr}')
        os.makedirs(o, exist_ok=True)
        shutil.copy(tmp + '/summary.csv', o + '/summary.csv')
        open(o + '/key', 'w').write(k)
        shutil.rmtree(tmp)
    r = list(csv.DictReader(open(o + '/summary.csv')))[0]
    return exp, s, float(r['vm_seconds']), float(r['dp_lost_packets']), float(r['floor_vm_seconds'])
jobs = [(e, s) for e in ['daily-audio', 'daily-mobile-zoom'] for s in range(F, F + N)]
with ThreadPoolExecutor(2) as p:
    res = list(p.map(one, jobs))
out = []
for exp in ['daily-audio', 'daily-mobile-zoom']:
    tl = tr = tv = 0; ok = 0; over = 0; mx = 0; lines = []
    for e, s, vm, lost, fl in res:
        if e != exp: continue
        rp = f'{T}/reactive/{exp}/s{s}/summary.csv'
        rr = list(csv.DictReader(open(rp)))[0] if os.path.exists(rp) else None
        rl = float(rr['dp_lost_packets']) if rr else float('nan')
        rv = float(rr['vm_seconds']) if rr else float('nan')
        tl += lost; tr += rl; tv += vm; ok += lost <= 0.5 * rl
        over += vm / fl > 1.15; mx = max(mx, vm / fl)
        lines.append(f'{exp} s{s} vm {vm:.0f} lost {lost:.0f} react_lost {rl:.0f} vm/react {vm/rv:.4f} /floor {vm/fl:.4f}')
    out += lines
    out.append(f'SUM {name} {exp} vm {tv:.0f} lost {tl:.0f} react {tr:.0f} ratio {tl/tr if tr else float("nan"):.3f} le_half {ok}/{N} floor_max {mx:.4f} over1.15 {over}')
open(f'{T}/{name}.txt', 'w').write('\n'.join(out) + '\n')
print('\n'.join(l for l in out if l.startswith('SUM')))
