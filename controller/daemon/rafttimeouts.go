package daemon

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// RaftTimeoutsConfig sets raft's timeouts (node.raftTimeouts, cluster mode;
// durations, defaults raft's: heartbeat 1s, election 1s, leaderLease
// 500ms). Longer timeouts ride out a starved host or a slow network
// without spurious elections, but an election after a leader's loss takes
// longer: the workload reporters' wait for a new leader grows with them
// (reportNoLeaderWait).
type RaftTimeoutsConfig struct {
	Heartbeat   string `yaml:"heartbeat"`
	Election    string `yaml:"election"`
	LeaderLease string `yaml:"leaderLease"`
}

// Bounds of node.raftTimeouts: raft refuses less than 5 ms; more than a
// minute leaves a cluster without a leader for minutes after a loss.
const (
	minRaftTimeout = 5 * time.Millisecond
	maxRaftTimeout = time.Minute
)

// normalizeRaftTimeouts fills node.raftTimeouts' defaults and checks raft's
// own rules (leaderLease ≤ heartbeat ≤ election), so a node does not fail
// at start with raft's unnamed error.
func (c *Config) normalizeRaftTimeouts() error {
	t := c.Node.RaftTimeouts
	if t == nil {
		return nil
	}
	if !c.Clustered() {
		return fmt.Errorf("node.raftTimeouts: only in cluster mode (node.raftBind is set)")
	}
	def := raft.DefaultConfig()
	var d [3]time.Duration
	for i, f := range []struct {
		name string
		v    *string
		def  time.Duration
	}{{"heartbeat", &t.Heartbeat, def.HeartbeatTimeout}, {"election", &t.Election, def.ElectionTimeout},
		{"leaderLease", &t.LeaderLease, def.LeaderLeaseTimeout}} {
		if *f.v == "" {
			*f.v = f.def.String()
		}
		v, err := time.ParseDuration(*f.v)
		if err != nil || v < minRaftTimeout || v > maxRaftTimeout {
			return fmt.Errorf("node.raftTimeouts.%s: %q is not a duration in [%v, %v]", f.name, *f.v, minRaftTimeout, maxRaftTimeout)
		}
		d[i] = v
	}
	switch hb, el, ls := d[0], d[1], d[2]; {
	case el < hb:
		return fmt.Errorf("node.raftTimeouts.election: %v must not be below heartbeat %v (a follower would call elections before it misses a heartbeat)", el, hb)
	case ls > hb:
		return fmt.Errorf("node.raftTimeouts.leaderLease: %v must not exceed heartbeat %v (raft's rule)", ls, hb)
	}
	return nil
}

// raftConfig is raft's configuration for this node: opt (tests) when set,
// else raft's defaults with node.raftTimeouts.
func (c *Config) raftConfig(opt *raft.Config) *raft.Config {
	if opt != nil {
		return opt
	}
	rc := raft.DefaultConfig()
	if t := c.Node.RaftTimeouts; t != nil {
		// checked by normalizeRaftTimeouts
		rc.HeartbeatTimeout, _ = time.ParseDuration(t.Heartbeat)
		rc.ElectionTimeout, _ = time.ParseDuration(t.Election)
		rc.LeaderLeaseTimeout, _ = time.ParseDuration(t.LeaderLease)
	}
	return rc
}

// minReportNoLeaderWait is reportNoLeaderWait's floor: what it was with a
// fixed value (an election after a leader's kill took 2.3 s on a loaded
// host with raft's default 1 s timeouts, and the reporter's 3 attempts
// give up after 0.75 s).
const minReportNoLeaderWait = 10 * time.Second

// reportNoLeaderWait is how long a workload report waits out a leader
// election before its passes count as failed attempts
// (transport.ReporterConfig.NoLeaderWait): two elections' worst case at
// raft's timeouts, at least minReportNoLeaderWait. One election after a
// leader's loss takes up to 2 × heartbeat (a follower's randomised
// heartbeat timeout, in [heartbeat, 2 × heartbeat)) plus 2 × election (a
// candidate's randomised election timeout); a split vote takes another.
// With raft's defaults (1 s, 1 s) that is 8 s, so the floor holds; with
// 3 s timeouts 24 s (an election took up to 8.9 s under starvation there).
func reportNoLeaderWait(rc *raft.Config) time.Duration {
	if rc == nil {
		rc = raft.DefaultConfig()
	}
	return max(minReportNoLeaderWait, 2*(2*rc.HeartbeatTimeout+2*rc.ElectionTimeout))
}
