"""Tests of scripts/issue16-criteria.py (run by `make test`)."""
import importlib.util
import os
import unittest

_spec = importlib.util.spec_from_file_location(
    "criteria", os.path.join(os.path.dirname(__file__), "issue16-criteria.py"))
criteria = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(criteria)

TABLE = """experiment           strategy         vm_s  buffered  ÷react  ÷floor  ÷fixed   dp_loss  ÷react
async-0s             hybrid          36092       572    0.577    1.128    1.120    0.078%    0.104
async-0s             reactive        62602         0    1.000    1.963    1.942    0.747%    1.000
simultaneous-20s     hybrid          22324       550    0.769    1.202    1.183    0.038%    0.019
simultaneous-20s     reactive        29024         0    1.000    1.563    1.539    1.991%    1.000
simultaneous-60s     hybrid          49909      1050    0.754    1.138    1.130    0.015%    0.500
simultaneous-60s     reactive        66201         0    1.000    1.509    1.498    0.030%    1.000
simultaneous-80s     hybrid          64607      1296    0.805    1.140    1.131    0.001%    0.061
simultaneous-80s     reactive        80297         0    1.000    1.417    1.405    0.011%    1.000
daily-audio          hybrid          78472      1857    0.763    1.134    1.145    0.001%      inf
daily-audio          reactive       102872         0    1.000    1.487    1.502    0.000%    1.000
outputs: /tmp/x
""".splitlines()


class CriteriaTest(unittest.TestCase):
    def test_counts_each_criterion(self):
        rows = criteria.parse(TABLE)
        self.assertTrue(criteria.meets(rows, "async-0s"))
        self.assertFalse(criteria.meets(rows, "simultaneous-20s"))  # 1.202 x floor
        self.assertTrue(criteria.meets(rows, "simultaneous-60s"))  # loss ratio exactly at 0.5
        self.assertFalse(criteria.meets(rows, "simultaneous-80s"))  # 0.805 x reactive's VM-s
        self.assertFalse(criteria.meets(rows, "daily-audio"))  # reactive-only lost nothing
        self.assertTrue(criteria.meets(rows, "daily-audio", absolute=True))

    def test_summary_line(self):
        line = criteria.summary("t", criteria.parse(TABLE))
        self.assertIn("all-three 2/4", line)
        self.assertIn("simultaneous-20s(0.769/1.202/0.019)", line)
        self.assertIn("daily-audio:miss/abs-ok", line)


if __name__ == "__main__":
    unittest.main()
