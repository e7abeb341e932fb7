"""Tests of scripts/loss-episodes.py (run by `make test`)."""
import importlib.util
import os
import unittest

_spec = importlib.util.spec_from_file_location(
    "episodes", os.path.join(os.path.dirname(__file__), "loss-episodes.py"))
episodes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(episodes)


def row(t, dc, vnf, lost):
    return {"t": str(t), "dc": dc, "vnf": vnf, "lost": f"{lost:.3f}"}


class EpisodesTest(unittest.TestCase):
    def test_joins_seconds_within_the_gap_per_dc_and_vnf(self):
        rows = [
            row(10, "tokyo", "ids", 100), row(10, "london", "transcoder", 50),
            row(11, "tokyo", "ids", 0), row(12, "tokyo", "ids", 200),
            row(13, "london", "transcoder", 25),  # 3 s after its last: joined
            row(17, "tokyo", "ids", 300),  # 5 s after its last: a new episode
            row(18, "tokyo", "S-CSCF", 999),  # control plane: left out
        ]
        got = episodes.episodes(rows, gap=3)
        self.assertEqual(got, [
            ("london", "transcoder", 10, 13, 75.0),
            ("tokyo", "ids", 10, 12, 300.0),
            ("tokyo", "ids", 17, 17, 300.0),
        ])

    def test_gap_zero_splits_every_lossless_second(self):
        rows = [row(1, "dc", "firewall", 1), row(2, "dc", "firewall", 1), row(4, "dc", "firewall", 1)]
        self.assertEqual(episodes.episodes(rows, gap=1), [("dc", "firewall", 1, 2, 2.0), ("dc", "firewall", 4, 4, 1.0)])
        self.assertEqual(len(episodes.episodes(rows, gap=0)), 3)

    def test_no_loss_no_episode(self):
        self.assertEqual(episodes.episodes([row(1, "dc", "ids", 0)]), [])


if __name__ == "__main__":
    unittest.main()
