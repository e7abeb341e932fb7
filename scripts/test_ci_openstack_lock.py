"""Tests of scripts/ci-openstack.sh's machine lock (run by `make test`).

The script runs in a sandbox: a copy of it beside stub deploy/openstack/up.sh
and down.sh, lock files in a temp dir (IMS_ORCH_LOCK_DIR). The stub up.sh
records whether the OpenStack lock is held while it runs and whether it has
a descriptor of the lock file (the stack's daemons would keep the lock after
the run), then fails, so the script stops before its tests; the stub
down.sh records the same.
"""
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

STUB = r"""#!/usr/bin/env bash
# stub: records the lock as this process sees it
lock=$IMS_ORCH_LOCK_DIR/ims-orch-openstack.lock
want=$(stat -L -c %d:%i "$lock")
fds=0
for f in /proc/$$/fd/*; do
  [ "$(stat -L -c %d:%i "$f" 2>/dev/null)" = "$want" ] && fds=$((fds + 1))
done
if flock -n "$lock" true; then held=no; else held=yes; fi
echo "held=$held fds=$fds" >"$STUB_OUT/$(basename "$0")"
# whether the test had released its own hold of the lock (it writes
# "released" first), for the test of the wait
if [ -e "$STUB_OUT/released" ]; then echo yes; else echo no; fi >"$STUB_OUT/$(basename "$0").after-release"
[ "$(basename "$0")" = down.sh ] || exit 3
"""


class CIOpenStackLockTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ims-orch-ci-openstack-test-")
        self.addCleanup(shutil.rmtree, self.dir)
        os.makedirs(os.path.join(self.dir, "scripts"))
        os.makedirs(os.path.join(self.dir, "deploy", "openstack"))
        self.locks = os.path.join(self.dir, "locks")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.locks)
        os.makedirs(self.out)
        shutil.copy(os.path.join(HERE, "ci-openstack.sh"), os.path.join(self.dir, "scripts"))
        for name in ("up.sh", "down.sh"):
            p = os.path.join(self.dir, "deploy", "openstack", name)
            with open(p, "w") as f:
                f.write(STUB)
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        self.lock = self.lock_path("openstack")
        open(self.lock, "a").close()

    def lock_path(self, what):
        return os.path.join(self.locks, f"ims-orch-{what}.lock")

    def script_args(self, *prefix, wait="2"):
        env = dict(os.environ, IMS_ORCH_LOCK_DIR=self.locks, STUB_OUT=self.out, LOCK_WAIT=wait,
                   BASE=os.path.join(self.dir, "base"), KEEP="0")
        return [*prefix, "bash", os.path.join(self.dir, "scripts", "ci-openstack.sh")], env

    def run_script(self, *prefix, wait="2"):
        args, env = self.script_args(*prefix, wait=wait)
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    @staticmethod
    def end_group(p):
        """Ends the script p (started in its own session) and its children."""
        if p.poll() is None:
            os.killpg(p.pid, 9)

    def stub(self, name):
        p = os.path.join(self.out, name)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return f.read().strip()

    def lock_is_free(self):
        with open(self.lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(f, fcntl.LOCK_UN)
            return True

    def test_holds_the_lock_while_the_stack_starts_and_stops_and_keeps_it_from_the_stack(self):
        r = self.run_script()
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)  # the stub up.sh's failure
        self.assertIn("took " + self.lock, r.stdout)
        self.assertEqual(self.stub("up.sh"), "held=yes fds=0")
        self.assertEqual(self.stub("down.sh"), "held=yes fds=0")
        self.assertTrue(self.lock_is_free(), "the lock outlived the script")

    def test_waits_for_another_run_then_gives_up_naming_the_lock(self):
        with open(self.lock) as other:
            fcntl.flock(other, fcntl.LOCK_EX)
            r = self.run_script(wait="1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{self.lock} not taken within 1 s", r.stderr)
        self.assertIsNone(self.stub("up.sh"), "the stack started while another run held the lock")
        self.assertIsNone(self.stub("down.sh"), "the stack stopped while another run held the lock")

    def test_waits_for_another_run_and_starts_the_stack_once_it_has_the_lock(self):
        args, env = self.script_args(wait="120")
        with open(self.lock) as other:
            fcntl.flock(other, fcntl.LOCK_EX)
            p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
            self.addCleanup(p.wait)
            self.addCleanup(self.end_group, p)  # if an assertion below fails first
            seen = []
            for line in p.stdout:  # until the script says it waits
                seen.append(line)
                if line.startswith("== waiting for " + self.lock):
                    break
            else:
                self.fail("the script did not wait: " + "".join(seen) + p.communicate(timeout=60)[1])
            self.assertIn(f"pid {os.getpid()} ", seen[-1], "the wait names who holds the lock")
            self.assertIsNone(self.stub("up.sh"), "the stack started while another run held the lock")
            open(os.path.join(self.out, "released"), "w").close()
            fcntl.flock(other, fcntl.LOCK_UN)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3, "".join(seen) + out + err)  # the stub up.sh's failure
        self.assertIn("took " + self.lock, out)
        self.assertEqual(self.stub("up.sh"), "held=yes fds=0")
        self.assertEqual(self.stub("up.sh.after-release"), "yes", "the stack started before the other run let go")
        self.assertTrue(self.lock_is_free(), "the lock outlived the script")

    def test_gives_up_naming_the_processes_that_hold_the_lock_and_down_sh(self):
        # a holder like a stack started under `flock LOCK up.sh`: flock(1)
        # and the child that inherited its descriptor
        # (cat ends when the test closes its stdin)
        holder = subprocess.Popen(["flock", self.lock, "sh", "-c", "echo locked; exec cat"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.stdin.close)
        self.assertEqual(holder.stdout.readline(), "locked\n")
        r = self.run_script(wait="1")
        holder.stdin.close()
        holder.stdout.close()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{self.lock} not taken within 1 s", r.stderr)
        self.assertIn(f"pid {holder.pid} (flock {self.lock} sh -c", r.stderr)
        self.assertRegex(r.stderr, r"pid \d+ \(cat\)")
        self.assertIn("deploy/openstack/down.sh", r.stderr)

    def test_runs_under_an_ancestors_lock_without_passing_it_to_the_stack(self):
        r = self.run_script("flock", self.lock)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("held by an ancestor (flock(1)): running under it", r.stdout)
        self.assertEqual(self.stub("up.sh"), "held=yes fds=0")
        self.assertEqual(self.stub("down.sh"), "held=yes fds=0")

    def test_refuses_the_sip_or_ovs_lock_alone_and_a_shared_lock(self):
        for what in ("sip", "ovs"):
            r = self.run_script("flock", self.lock_path(what))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("lock order", r.stderr)
            self.assertIn(self.lock_path(what), r.stderr)
        r = self.run_script("flock", "-s", self.lock)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("held shared by an ancestor", r.stderr)
        self.assertIsNone(self.stub("up.sh"))

    def test_the_sip_lock_after_the_openstack_lock_is_the_lock_order(self):
        r = self.run_script("flock", self.lock, "flock", self.lock_path("sip"))
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertEqual(self.stub("up.sh"), "held=yes fds=0")


if __name__ == "__main__":
    unittest.main()
