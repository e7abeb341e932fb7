"""Tests of scripts/issue16-criteria.py (run by `make test`)."""
import importlib.util
import math
import os
import tempfile
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
        self.assertIn("simultaneous-20s(0.7690/1.2020/0.0190)", line)
        self.assertIn("daily-audio:miss/abs-ok", line)


HEADER = ("strategy,vm_seconds,buffered_vm_seconds,floor_vm_seconds,floor_fixed_vm_seconds,"
          "dp_loss,dp_lost_packets,dp_offered_packets\n")


class ExactTest(unittest.TestCase):
    """With an existing "outputs: DIR", the criteria come from DIR/<exp>/summary.csv."""

    def table(self, out):
        # as printed with 4 decimals: 1.15004 x floor reads 1.1500, a loss ratio of
        # 0.50004 reads 0.5000, a hybrid loss of 0.0104 % reads 0.010%
        return f"""experiment           strategy         vm_s  buffered  ÷react  ÷floor  ÷fixed   dp_loss  ÷react
simultaneous-30s     hybrid          28751       846   0.7500   1.1500   1.1300    0.003%   0.0060
simultaneous-30s     reactive        38335         0   1.0000   1.5300   1.5100    0.505%   1.0000
simultaneous-60s     hybrid          49000      1050   0.7400   1.1300   1.1200    0.015%   0.5000
simultaneous-60s     reactive        66000         0   1.0000   1.5000   1.4900    0.030%   1.0000
daily-audio          hybrid          78000      1857   0.7600   1.1300   1.1400    0.010%   1.0400
daily-audio          reactive       102000         0   1.0000   1.4800   1.5000    0.010%   1.0000
outputs: {out}
""".splitlines()

    def write(self, out, exp, text):
        os.makedirs(os.path.join(out, exp))
        with open(os.path.join(out, exp, "summary.csv"), "w") as f:
            f.write(HEADER + text)

    def test_unrounded_values_decide(self):
        with tempfile.TemporaryDirectory() as out:
            # 28751 / 25000 = 1.15004 x floor
            self.write(out, "simultaneous-30s", "hybrid,28751,846,25000,25443,0.00003,30,1000000\n"
                                                "reactive,38335,0,25000,25443,0.005,5000,1000000\n")
            # loss 300.04 / 600 = 0.50007 x reactive-only's
            self.write(out, "simultaneous-60s", "hybrid,49000,1050,43363,43750,0.00015,300.04,2000000\n"
                                                "reactive,66000,0,44000,44295,0.0003,600,2000000\n")
            # reactive-only 0.0100 %, hybrid 0.0104 %: over the absolute bound
            self.write(out, "daily-audio", "hybrid,78000,1857,69027,68421,0.000104,104,1000000\n"
                                           "reactive,102000,0,68919,68000,0.0001,100,1000000\n")
            rows = criteria.parse(self.table(out))
            self.assertAlmostEqual(rows[("simultaneous-30s", "hybrid")]["floor"], 1.15004)
            self.assertFalse(criteria.meets(rows, "simultaneous-30s"))
            self.assertAlmostEqual(rows[("simultaneous-60s", "hybrid")]["lr"], 300.04 / 600)
            self.assertFalse(criteria.meets(rows, "simultaneous-60s"))
            self.assertAlmostEqual(rows[("daily-audio", "hybrid")]["loss"], 0.0104)
            self.assertFalse(criteria.meets(rows, "daily-audio", absolute=True))
            line = criteria.summary("t", rows)
            self.assertIn("all-three 0/2", line)
            self.assertIn("simultaneous-30s(0.7500/1.1500/0.0060)", line)

    def test_printed_columns_without_the_directory(self):
        with tempfile.TemporaryDirectory() as out:
            rows = criteria.parse(self.table(os.path.join(out, "gone")))
        self.assertTrue(criteria.meets(rows, "simultaneous-30s"))  # 1.1500 as printed
        self.assertTrue(criteria.meets(rows, "simultaneous-60s"))  # 0.5000 as printed
        self.assertTrue(criteria.meets(rows, "daily-audio", absolute=True))

    def test_an_experiment_without_a_summary_keeps_the_printed_columns(self):
        with tempfile.TemporaryDirectory() as out:
            self.write(out, "simultaneous-30s", "hybrid,28751,846,25000,25443,0.00003,30,1000000\n"
                                                "reactive,38335,0,25000,25443,0.005,5000,1000000\n")
            rows = criteria.parse(self.table(out))
        self.assertFalse(criteria.meets(rows, "simultaneous-30s"))
        self.assertTrue(criteria.meets(rows, "simultaneous-60s"))

    def test_reactive_losing_nothing(self):
        rows = criteria.exact("x", [
            {"strategy": "hybrid", "vm_seconds": "10", "floor_vm_seconds": "9", "floor_fixed_vm_seconds": "9",
             "dp_loss": "0", "dp_lost_packets": "5", "dp_offered_packets": "100"},
            {"strategy": "proactive", "vm_seconds": "10", "floor_vm_seconds": "9", "floor_fixed_vm_seconds": "9",
             "dp_loss": "0", "dp_lost_packets": "0", "dp_offered_packets": "100"},
            {"strategy": "reactive", "vm_seconds": "20", "floor_vm_seconds": "9", "floor_fixed_vm_seconds": "9",
             "dp_loss": "0", "dp_lost_packets": "0", "dp_offered_packets": "100"}])
        self.assertTrue(math.isinf(rows[("x", "hybrid")]["lr"]))
        # neither lost a packet: 0 <= 0.5 x 0, the loss criterion holds (as daily-seeds.py decides)
        self.assertEqual(rows[("x", "proactive")]["lr"], 0.0)
        self.assertEqual(rows[("x", "hybrid")]["react"], 0.5)

    def test_zero_over_zero_printed(self):
        # sweep.sh prints 0/0 when neither strategy lost a packet; it meets the criterion
        table = [
            "daily-audio          hybrid          78544      3144   0.7635   1.1370   1.1465    0.000%      0/0",
            "daily-audio          reactive       102872         0   1.0000   1.4869   1.5016    0.000%      0/0",
        ]
        rows = criteria.parse(table)
        self.assertEqual(rows[("daily-audio", "hybrid")]["lr"], 0.0)
        self.assertTrue(criteria.meets(rows, "daily-audio"))


if __name__ == "__main__":
    unittest.main()
