package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// clusterConfig is the default config as a clustered global node.
func clusterConfig(t *RaftTimeoutsConfig) Config {
	c := *DefaultConfig()
	c.Node = NodeConfig{ID: "n1", RaftBind: "127.0.0.1:0", RaftTimeouts: t}
	c.Traffic = nil
	c.Role = RoleConfig{Global: true}
	return c
}

func TestRaftTimeoutsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    RaftTimeoutsConfig
		want string
	}{
		{"not a duration", RaftTimeoutsConfig{Heartbeat: "soon"}, "node.raftTimeouts.heartbeat"},
		{"below raft's 5 ms", RaftTimeoutsConfig{Election: "1ms"}, "node.raftTimeouts.election"},
		{"above a minute", RaftTimeoutsConfig{Heartbeat: "2m", Election: "2m"}, "node.raftTimeouts.heartbeat"},
		{"negative lease", RaftTimeoutsConfig{LeaderLease: "-1s"}, "node.raftTimeouts.leaderLease"},
		{"election below heartbeat", RaftTimeoutsConfig{Heartbeat: "3s", Election: "2s"}, "node.raftTimeouts.election: 2s must not be below heartbeat 3s"},
		{"election below the default heartbeat", RaftTimeoutsConfig{Election: "500ms"}, "node.raftTimeouts.election"},
		{"lease above heartbeat", RaftTimeoutsConfig{Heartbeat: "2s", Election: "2s", LeaderLease: "3s"}, "node.raftTimeouts.leaderLease: 3s must not exceed heartbeat 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := tc.t
			c := clusterConfig(&to)
			if err := c.Normalize(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	single := *DefaultConfig()
	single.Node.RaftTimeouts = &RaftTimeoutsConfig{}
	if err := single.Normalize(); err == nil || !strings.Contains(err.Error(), "node.raftTimeouts: only in cluster mode") {
		t.Fatalf("single-node mode: %v", err)
	}

	// unset fields take raft's defaults; the reporter waits for a leader
	// two worst-case elections (at least 10 s)
	c := clusterConfig(&RaftTimeoutsConfig{Heartbeat: "3s", Election: "4s"})
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	rc := c.raftConfig(nil)
	if rc.HeartbeatTimeout != 3*time.Second || rc.ElectionTimeout != 4*time.Second || rc.LeaderLeaseTimeout != 500*time.Millisecond {
		t.Fatalf("raft config %v/%v/%v, want 3s/4s/500ms", rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout)
	}
	if c.Node.RaftTimeouts.LeaderLease != "500ms" {
		t.Fatalf("leaderLease default %q", c.Node.RaftTimeouts.LeaderLease)
	}
	if w := reportNoLeaderWait(rc); w != 28*time.Second {
		t.Fatalf("no-leader wait %v, want 28s", w)
	}
	if err := raft.ValidateConfig(withID(rc)); err != nil {
		t.Fatalf("raft refuses the config: %v", err)
	}
	// tests' Options.Raft wins; no raftTimeouts: raft's defaults
	opt := raft.DefaultConfig()
	opt.HeartbeatTimeout = 7 * time.Second
	if c.raftConfig(opt) != opt {
		t.Fatal("Options.Raft not used")
	}
	plain := clusterConfig(nil)
	if err := plain.Normalize(); err != nil {
		t.Fatal(err)
	}
	if rc := plain.raftConfig(nil); rc.HeartbeatTimeout != time.Second || reportNoLeaderWait(rc) != 10*time.Second {
		t.Fatalf("defaults: heartbeat %v, wait %v", rc.HeartbeatTimeout, reportNoLeaderWait(rc))
	}
}

func withID(rc *raft.Config) *raft.Config {
	c := *rc
	c.LocalID = "n1"
	return &c
}

// TestNodeIDOneMessage: node.id has one rule and one message, whatever
// breaks it (it was checked twice, for white space and '/' and again as a
// reporter ID, with two messages for the same mistake).
func TestNodeIDOneMessage(t *testing.T) {
	const rule = "a node ID is at most 128 bytes of printable UTF-8 without white space or '/'"
	for _, id := range []string{"n 1", "n\t1", "n\n1", "n/1", "n\x01", "\xff", strings.Repeat("n", 129)} {
		c := clusterConfig(nil)
		c.Node.ID = id
		err := c.Normalize()
		if err == nil || !strings.HasPrefix(err.Error(), "node.id: ") || !strings.HasSuffix(err.Error(), "; "+rule) ||
			strings.Count(err.Error(), "node.id") != 1 {
			t.Errorf("node.id %q: %v, want one error naming node.id once and ending with the rule", id, err)
		}
	}
	c := clusterConfig(nil)
	c.Node.ID = "n1.tokyo-é"
	if err := c.Normalize(); err != nil {
		t.Fatalf("a valid node ID: %v", err)
	}
}

// TestRaftTimeoutsAgainstTheInterval: an election timeout at or above the
// scaling interval is refused naming both fields (every election would
// span a round, silently not run); a worst case between the two is a
// warning at start.
func TestRaftTimeoutsAgainstTheInterval(t *testing.T) {
	withInterval := func(rt *RaftTimeoutsConfig, secs int) Config {
		c := clusterConfig(rt)
		c.Policy.IntervalSeconds = secs
		return c
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"election at the interval", withInterval(&RaftTimeoutsConfig{Heartbeat: "3s", Election: "10s"}, 10),
			"node.raftTimeouts.election: 10s must be below policy.intervalSeconds (10s)"},
		{"election above the interval", withInterval(&RaftTimeoutsConfig{Election: "45s"}, 30),
			"node.raftTimeouts.election: 45s must be below policy.intervalSeconds (30s)"},
		{"raft's default election at a 1 s interval", withInterval(nil, 1),
			"node.raftTimeouts.election (raft's default): 1s must be below policy.intervalSeconds (1s)"},
	} {
		if err := tc.c.Normalize(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// the worst case of one election reaches the interval: a warning
	c := withInterval(&RaftTimeoutsConfig{Heartbeat: "3s", Election: "4s"}, 10)
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if w := c.raftIntervalWarning(); !strings.Contains(w, "up to 14s (2 × heartbeat 3s + 2 × election 4s), not below policy.intervalSeconds (10s)") {
		t.Fatalf("3 s / 4 s at 10 s: warning %q", w)
	}
	for _, ok := range []Config{withInterval(nil, 10), withInterval(&RaftTimeoutsConfig{Heartbeat: "2s", Election: "2s"}, 10)} {
		if err := ok.Normalize(); err != nil || ok.raftIntervalWarning() != "" {
			t.Errorf("%+v at 10 s: %v, warning %q; want neither", ok.Node.RaftTimeouts, err, ok.raftIntervalWarning())
		}
	}
	// single-node mode runs no raft: any interval
	single := *DefaultConfig()
	single.Policy.IntervalSeconds = 1
	if err := single.Normalize(); err != nil || single.raftIntervalWarning() != "" {
		t.Fatalf("single-node mode at 1 s: %v, %q", err, single.raftIntervalWarning())
	}
}
