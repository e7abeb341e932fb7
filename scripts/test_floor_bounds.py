#!/usr/bin/env python3
"""Tests of scripts/floor-bounds.py against brute force on tiny series.

  python3 scripts/test_floor_bounds.py

The brute force enumerates schedules of individual instances (each with a
first active second and a destruction second, launched P samples before it
becomes active, destroyed only at seconds the rule allows) and costs them the
way the simulator samples VMs; the DP works on instance counts. They must
agree exactly on min VM-s + lambda * loss, and the Lagrangian bound must never
exceed the brute-force optimum under a loss budget.
"""
import importlib.util
import itertools
import os
import random
import unittest

_spec = importlib.util.spec_from_file_location(
    'floor_bounds', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'floor-bounds.py'))
fb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fb)


def lifetimes(T, dec_ok):
    """Every (u, e): active seconds u..e-1 (1-based), u = 1 may be pre-launched,
    destroyed at the start of second e (e = T+1: never); a destruction inside
    the window only where dec_ok allows it."""
    out = []
    for u in range(1, T + 1):
        for e in range(u + 1, T + 2):
            if e == T + 1 or dec_ok[e - 1]:
                out.append((u, e))
    return out


def schedule_cost(T, insts, boot):
    """VM-s of a set of instances: boot samples inside 1..T plus active seconds."""
    c = 0
    for u, e in insts:
        c += min(boot, u - 1) + (e - u)
    return c


def counts(T, insts):
    a = [0] * T
    for u, e in insts:
        for t in range(u, e):
            a[t - 1] += 1
    return a


def loss_of(loads, mu, a):
    return sum(max(0.0, x - mu * n) for x, n in zip(loads, a))


def brute_series(loads, mu, m, dec_ok, boot, kmax):
    """All (vm_s, loss) of schedules with at most kmax instances and >= m
    active at every second."""
    T = len(loads)
    opts = lifetimes(T, dec_ok)
    res = []
    for k in range(0, kmax + 1):
        for insts in itertools.combinations_with_replacement(opts, k):
            a = counts(T, insts)
            if min(a) < m:
                continue
            res.append((schedule_cost(T, insts, boot), loss_of(loads, mu, a)))
    return res


class SeriesDP(unittest.TestCase):
    def test_matches_brute_force(self):
        rnd = random.Random(16)
        for case in range(60):
            T = rnd.randint(2, 6)
            mu = 10.0
            loads = [rnd.choice([0, 3, 10, 12, 17, 20, 25]) for _ in range(T)]
            m = rnd.choice([0, 1])
            boot = rnd.choice([1, 2, 3])
            dec_ok = [rnd.random() < 0.5 for _ in range(T)]
            if case % 3 == 0:
                dec_ok = [True] * T
            brute = brute_series(loads, mu, m, dec_ok, boot, 3)
            for lam in (0.0, 0.05, 0.3, 1.0, 7.0, fb.INF):
                want = min((v + (lam * l if l > 0 else 0.0)) if lam != fb.INF else (v if l == 0 else fb.INF)
                           for v, l in brute)
                got = fb.series_dp(loads, mu, m, lam, dec_ok, boot)[0]
                self.assertAlmostEqual(got, want, places=9,
                                       msg="loads %s m %d boot %d dec %s lam %s" % (loads, m, boot, dec_ok, lam))

    def test_reported_vm_and_loss_are_the_minimisers(self):
        loads = [5.0, 25.0, 12.0, 3.0, 18.0]
        o, v, l = fb.series_dp(loads, 10.0, 1, 0.2, [True] * 5, 2)
        self.assertAlmostEqual(o, v + 0.2 * l)

    def test_boot_is_charged_and_pre_launch_is_free(self):
        # one instance needed from second 1 (free: launched before the traffic),
        # a second one at second 4: 2 boot samples inside the window
        loads = [5.0, 5.0, 5.0, 15.0]
        o, v, l = fb.series_dp(loads, 10.0, 0, fb.INF, [True] * 4, 2)
        self.assertEqual(v, 4 + 1 + 2)
        self.assertEqual(l, 0)

    def test_decrease_only_where_allowed(self):
        loads = [15.0, 5.0, 5.0, 5.0]
        free = fb.series_dp(loads, 10.0, 0, fb.INF, [True] * 4, 2)[1]
        late = fb.series_dp(loads, 10.0, 0, fb.INF, [False, False, False, True], 2)[1]
        self.assertEqual(free, 2 + 3)
        self.assertEqual(late, 2 + 2 + 2 + 1)


class Lagrangian(unittest.TestCase):
    def test_never_above_the_budgeted_optimum(self):
        rnd = random.Random(6)
        for case in range(25):
            T = rnd.randint(2, 4)
            mu = 10.0
            dec_ok = [rnd.random() < 0.6 for _ in range(T)]
            series = [([rnd.choice([0, 4, 10, 14, 22]) for _ in range(T)], mu, rnd.choice([0, 1])) for _ in range(2)]
            boot = 2
            per = [brute_series(L, mu, m, dec_ok, boot, 3) for L, mu, m in series]
            for B in (0.0, 3.0, 8.0, 20.0):
                best = fb.INF
                for (v1, l1), (v2, l2) in itertools.product(*per):
                    if l1 + l2 <= B + 1e-9:
                        best = min(best, v1 + v2)
                got, _ = fb.stage_bound(series, B, dec_ok, boot, iters=30)
                self.assertLessEqual(got, best + 1e-9, msg="series %s B %s dec %s" % (series, B, dec_ok))
                if B == 0:
                    self.assertAlmostEqual(got, best)

    def test_budget_helps(self):
        # 0.5 of an instance over for one second: losing 5 saves that instance's boot and seconds
        series = [([10.0, 10.0, 15.0, 10.0], 10.0, 1)]
        zero, _ = fb.stage_bound(series, 0.0, [True] * 4, 2)
        some, _ = fb.stage_bound(series, 5.0, [True] * 4, 2)
        self.assertEqual(zero, 4 + 1 + 2)
        self.assertAlmostEqual(some, 4, places=6)


class LossRelaxation(unittest.TestCase):
    """The lemma the per-stage budgets rest on, on a flow-level chain run
    the way drivers/sim/traffic's dataPlane runs it (each flow pinned to one
    instance per stage, stage s offered what s-1 delivered, sim.Serve per
    instance): total lost >= sum_d max(0, L_sd - mu a_sd) for every stage s,
    with L_sd the entry load of the flows through (s, d) or the offered load
    the stage recorded."""

    def test_total_loss_at_least_every_stage_excess(self):
        rnd = random.Random(1)
        for case in range(300):
            stages, dcs, mu = rnd.randint(1, 3), rnd.randint(1, 3), 100.0
            inst = {(s, d): rnd.randint(0, 3) for s in range(stages) for d in range(dcs)}
            flows = []
            for _ in range(rnd.randint(1, 12)):
                path = [rnd.randrange(dcs) for _ in range(stages)]
                if any(inst[(s, d)] == 0 for s, d in enumerate(path)):
                    continue  # a real router never pins a flow to no instance
                pick = [rnd.randrange(inst[(s, d)]) for s, d in enumerate(path)]
                flows.append((rnd.choice([20.0, 50.0, 90.0]), path, pick))
            surv = [f[0] for f in flows]
            entry = {k: 0.0 for k in inst}
            recorded = {k: 0.0 for k in inst}
            for s in range(stages):
                offered = {}
                for i, (rate, path, pick) in enumerate(flows):
                    k = (s, path[s], pick[s])
                    offered[k] = offered.get(k, 0.0) + surv[i]
                    entry[(s, path[s])] += rate
                    recorded[(s, path[s])] += surv[i]
                for i, (rate, path, pick) in enumerate(flows):
                    lam = offered[(s, path[s], pick[s])]
                    surv[i] *= min(1.0, mu / lam) if lam > 0 else 1.0
            lost = sum(f[0] for f in flows) - sum(surv)
            for s in range(stages):
                for load in (entry, recorded):
                    exc = sum(max(0.0, load[(s, d)] - mu * inst[(s, d)]) for d in range(dcs))
                    self.assertGreaterEqual(lost + 1e-6, exc, msg="case %d stage %d" % (case, s))


class FlowAge(unittest.TestCase):
    def test_starts_recovered_from_the_load(self):
        rnd = random.Random(3)
        starts = [rnd.choice([0, 50, 100, 150]) for _ in range(300)]
        loads = [sum(starts[max(0, t - fb.CALL_SECONDS + 1):t + 1]) for t in range(300)]
        self.assertEqual([round(x) for x in fb.new_flow_starts(loads)], starts)

    def test_least_after_a_round(self):
        # 100 pkt/s of calls start every second from second 1; rounds at 15
        # and 65 (I = 50): the calls started in (15, 65) — seconds 16..64,
        # 49 x 100 — need ceil(4900 / 1000) = 5 VMs in [65, 115)
        T = 130
        starts = [100.0] * T
        loads = [sum(starts[max(0, t - 59):t + 1]) for t in range(T)]
        least = fb.flow_age_least(loads, 1000.0, [15.0, 65.0], 50.0)
        self.assertEqual(least[64:114], [5] * 50)
        self.assertEqual(least[114:], [0] * (T - 114))
        self.assertEqual(least[:64], [0] * 64)


class Rules(unittest.TestCase):
    def test_scaling_interval(self):
        self.assertEqual(fb.scaling_interval([-35.0, 15.0, 65.0, 115.0]), 50.0)

    def test_round_windows(self):
        ok = fb.dec_rule(200, 'b', rounds=[15.0, 65.0], interval=50.0)
        allowed = [t + 1 for t, x in enumerate(ok) if x]
        self.assertEqual(allowed, list(range(15, 28)) + list(range(65, 78)))
        self.assertTrue(all(fb.dec_rule(10, 'a')))


if __name__ == '__main__':
    unittest.main()
