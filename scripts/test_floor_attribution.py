#!/usr/bin/env python3
"""Tests of scripts/floor-attribution.py's phases and attribution.

  python3 scripts/test_floor_attribution.py
"""
import importlib.util
import os
import unittest

_spec = importlib.util.spec_from_file_location(
    'floor_attribution', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'floor-attribution.py'))
fa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fa)


class Phases(unittest.TestCase):
    def test_change_interval(self):
        p = fa.phases("20")
        self.assertEqual([p(280), p(281), p(520), p(521)], ["1 up", "2 down", "2 down", "3 steady"])

    def test_explicit_ends(self):
        p = fa.phases("150,350")
        self.assertEqual([p(1), p(150), p(151), p(350), p(351), p(1200)],
                         ["1 (0-150]", "1 (0-150]", "2 (150-350]", "2 (150-350]", "3 (350-end]", "3 (350-end]"])

    def test_bad_ends(self):
        for arg in ("350,150", "150,150", "0,10", "a,b"):
            with self.assertRaises(ValueError, msg=arg):
                fa.phases(arg)


class Attribute(unittest.TestCase):
    def test_causes_and_trigger(self):
        # one IDS series (capacity 20000), two seconds in phase 1, one in phase 2:
        # t=1: 19000 pkt/s on 2 active, none buffered: floor 1, 1 above it; at the
        #      trigger (18000 per instance) 2 are needed: nothing above that
        # t=2: 10000 pkt/s, 1 booting, 3 active of which 1 buffered: working 2,
        #      floor 1, at the trigger 1: 1 above both
        # t=3: 25000 pkt/s on 1 working: 1 below the floor (it ran above capacity)
        series = {("dc0", "ids"): {1: (19000.0, 0, 2), 2: (10000.0, 1, 3), 3: (25000.0, 0, 1)}}
        row = {"buffered": "0", "draining": "0"}
        counts = {(1, "dc0", "ids"): row, (2, "dc0", "ids"): {"buffered": "1", "draining": "0"},
                  (3, "dc0", "ids"): row}
        agg = fa.attribute(series, counts, fa.phases("2,3"))
        # boot, buffered, work>flr, work<flr, floor, w>trig
        self.assertEqual(agg[("1 (0-2]", "ids")], [1, 1, 2, 0, 2, 1])
        self.assertEqual(agg[("2 (2-3]", "*")], [0, 0, 0, -1, 2, 0])
        self.assertEqual(agg[("all", "*")], [1, 1, 2, -1, 4, 1])


if __name__ == '__main__':
    unittest.main()
