#!/usr/bin/env python3
"""Where an ovs-ofctl bundle's time goes (docs/dataplane.md "What one bundle costs").

Runs against a bridge's management socket (MGMT, unix:...) of a running
ovs-vswitchd (pid VSWITCHD_PID) and times, R times each:
  exec       ovs-ofctl --version (process start only)
  probe      ovs-ofctl probe (start + connect + hello + echo)
  dump       ovs-ofctl dump-flows of the bridge (its rules)
  ofctl-N    ovs-ofctl --bundle add-flows of N rules (adds, then the next
             run deletes them: the table stays small)
  sock-N     the same N-rule atomic ordered bundle over ONE persistent
             OpenFlow 1.5 connection (hand-encoded: open, N add-messages,
             commit, wait for the commit's reply)
For each: wall-clock p50/p90 (ms), the ovs-ofctl child's CPU (user+sys, ms)
and ovs-vswitchd's CPU per run (ms, from /proc/PID/stat, all its threads);
then ovs-vswitchd's CPU per bundle with runs 0.3 s apart (its revalidation
after a commit runs after the reply) against an idle baseline.

usage: ofctl-cost.py MGMT VSWITCHD_PID OFCTL_ENV_DIR R N...
"""
import os, resource, socket, struct, subprocess, sys, time

mgmt, vpid, rundir, R = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
Ns = [int(x) for x in sys.argv[5:]]
env = dict(os.environ, OVS_RUNDIR=rundir, OVS_LOGDIR=rundir, OVS_DBDIR=rundir)
TICK = os.sysconf("SC_CLK_TCK")


def vcpu():
    f = open(f"/proc/{vpid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000.0 / TICK  # utime+stime, ms


def rules(n, tag, delete):
    out = []
    for i in range(n):
        m = f"priority=100,udp,nw_src=10.{tag}.{i // 250}.{i % 250 + 1},tp_src=6000"
        out.append(f"delete_strict {m}" if delete else f"add cookie=0x{tag:x},{m},actions=drop")
    return "\n".join(out) + "\n"


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000.0


def run_ofctl(args, stdin=None):
    subprocess.run(["ovs-ofctl"] + args, input=stdin, env=env, check=True,
                   stdout=subprocess.DEVNULL, text=True)


# --- one persistent OpenFlow 1.5 connection, hand-encoded -----------------
V = 6
xid = 100


def hdr(t, length, x):
    return struct.pack("!BBHI", V, t, length, x)


def msg(t, body, x=None):
    global xid
    if x is None:
        xid += 1
        x = xid
    return hdr(t, 8 + len(body), x) + body, x


def oxm(field, val):
    return struct.pack("!HBB", 0x8000, field << 1, len(val)) + val


def flow_mod(n_i, tag, delete, x):
    m = (oxm(5, struct.pack("!H", 0x0800)) + oxm(10, b"\x11") +
         oxm(11, bytes([10, tag, n_i // 250, n_i % 250 + 1])) + oxm(15, struct.pack("!H", 6000)))
    match = struct.pack("!HH", 1, 4 + len(m)) + m
    match += b"\0" * ((8 - len(match) % 8) % 8)
    body = struct.pack("!QQBBHHHIIIHH", 0 if delete else tag, 0, 0, 4 if delete else 0, 0, 0, 100,
                       0xffffffff, 0xffffffff, 0xffffffff, 0, 0) + match
    return hdr(14, 8 + len(body), x) + body


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.s.sendall(msg(0, b"")[0])
        self.read_until(0)

    def read_msg(self):
        while len(self.buf) < 8 or len(self.buf) < struct.unpack("!H", self.buf[2:4])[0]:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        n = struct.unpack("!H", self.buf[2:4])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m

    def read_until(self, t, x=None):
        while True:
            m = self.read_msg()
            mt, mx = m[1], struct.unpack("!I", m[4:8])[0]
            if mt == 1:
                raise RuntimeError(f"OpenFlow error {m[8:12].hex()} for xid {mx}")
            if mt == 2:  # echo request
                self.s.sendall(hdr(3, len(m), mx) + m[8:])
                continue
            if mt == t and (x is None or mx == x):
                return m

    def bundle(self, n, tag, delete, bid):
        ctl = lambda typ: msg(33, struct.pack("!IHH", bid, typ, 3))
        m, x = ctl(0)
        out = [m]
        for i in range(n):
            global xid
            xid += 1
            fm = flow_mod(i, tag, delete, xid)
            out.append(hdr(34, 8 + 8 + len(fm), xid) + struct.pack("!IHH", bid, 0, 3) + fm)
        m, cx = ctl(4)
        out.append(m)
        self.s.sendall(b"".join(out))
        self.read_until(33, x)   # open reply
        self.read_until(33, cx)  # commit reply (errors raise)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def measure(name, fn):
    walls, kids, vs = [], [], []
    for i in range(R):
        c0, v0, t0 = child_cpu(), vcpu(), time.perf_counter()
        fn(i)
        t1 = time.perf_counter()
        walls.append((t1 - t0) * 1000)
        kids.append(child_cpu() - c0)
        vs.append(vcpu() - v0)
    print(f"{name:10s} wall p50 {pct(walls, .5):7.1f} p90 {pct(walls, .9):7.1f} ms | "
          f"ovs-ofctl CPU {sum(kids) / R:6.1f} ms/run | vswitchd CPU {sum(vs) / R:6.1f} ms/run", flush=True)


ofp = ["-O", "OpenFlow15"]
measure("exec", lambda i: run_ofctl(["--version"]))
measure("probe", lambda i: run_ofctl(ofp + ["probe", mgmt]))
measure("dump", lambda i: run_ofctl(ofp + ["dump-flows", mgmt]))
for n in Ns:
    measure(f"ofctl-{n}", lambda i: run_ofctl(ofp + ["--bundle", "add-flows", mgmt, "-"],
                                                rules(n, 7, i % 2 == 1)))
conn = Conn(mgmt[len("unix:"):])
for n in Ns:
    measure(f"sock-{n}", lambda i: conn.bundle(n, 9, i % 2 == 1, 1000 + i))
# ovs-vswitchd's work after a commit (revalidation) runs after the reply:
# spaced runs (0.3 s apart, like calls' bundles) count it, per run, with
# an idle baseline (the same pause, no bundle)
def spaced(name, fn):
    vs = []
    for i in range(R // 2):
        v0 = vcpu()
        fn(i)
        time.sleep(0.3)
        vs.append(vcpu() - v0)
    print(f"{name:10s} spaced 0.3 s: vswitchd CPU {sum(vs) / len(vs):6.1f} ms/run (bundle + what follows it)", flush=True)


spaced("idle", lambda i: None)
spaced("ofctl-1", lambda i: run_ofctl(ofp + ["--bundle", "add-flows", mgmt, "-"], rules(1, 7, i % 2 == 1)))
spaced("sock-1", lambda i: conn.bundle(1, 9, i % 2 == 1, 3000 + i))
spaced("sock-100", lambda i: conn.bundle(100, 9, i % 2 == 1, 4000 + i))
# the hand-encoded bundles do install rules: 100 added, counted, deleted
conn.bundle(100, 9, False, 5000)
out = subprocess.run(["ovs-ofctl"] + ofp + ["dump-flows", mgmt, "cookie=0x9/-1"], env=env, check=True,
                     capture_output=True, text=True).stdout
conn.bundle(100, 9, True, 5001)
print(f"check: {out.count('actions=drop')} of 100 rules of one socket bundle on the bridge", flush=True)
