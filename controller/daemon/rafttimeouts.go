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
		return c.checkRaftInterval()
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
	return c.checkRaftInterval()
}

// checkRaftInterval refuses raft timeouts (node.raftTimeouts, or raft's
// defaults) whose election timeout is not below the scaling interval
// (policy.intervalSeconds; normalizePolicy runs first). After a leader's
// loss no round runs until a new leader is elected: a follower notices
// after its randomised heartbeat timeout (≤ election), a split vote costs
// a randomised election timeout more; with the election timeout at the
// interval or above, an election spans at least a whole interval, and the
// rounds it covers are not run (the next leader starts the round at once,
// the intervals in between are not measured apart). No use needs that:
// timeouts long enough to ride out a starved host (3 s measured) sit far
// below an interval (10–50 s), and a longer interval is the knob for a
// slower network. Worst cases between the two (an election can take up to
// 2 × heartbeat + 2 × election, and a split vote repeats it) are a
// warning at start (raftIntervalWarning): they cost a round only when an
// election is slow, which the starved host the timeouts are made for
// accepts.
func (c *Config) checkRaftInterval() error {
	if !c.Clustered() {
		return nil
	}
	rc, iv := c.raftConfig(nil), c.Interval()
	if rc.ElectionTimeout >= iv {
		field := "node.raftTimeouts.election"
		if c.Node.RaftTimeouts == nil {
			field = "node.raftTimeouts.election (raft's default)"
		}
		return fmt.Errorf("%s: %v must be below policy.intervalSeconds (%v): an election after a leader's loss would span a whole scaling interval, whose round is not run; shorten the raft timeouts or lengthen the interval",
			field, rc.ElectionTimeout, iv)
	}
	return nil
}

// raftIntervalWarning is the warning the daemon logs at start when one
// election's worst case (2 × heartbeat + 2 × election: the randomised
// timeouts at their top) reaches the scaling interval: a slow election
// after a leader's loss then costs a round ("" when not clustered or
// below the interval).
func (c *Config) raftIntervalWarning() string {
	if !c.Clustered() {
		return ""
	}
	rc, iv := c.raftConfig(nil), c.Interval()
	if worst := 2*rc.HeartbeatTimeout + 2*rc.ElectionTimeout; worst >= iv {
		return fmt.Sprintf("node.raftTimeouts: an election can take up to %v (2 × heartbeat %v + 2 × election %v), not below policy.intervalSeconds (%v): a slow election after a leader's loss costs a scaling round",
			worst, rc.HeartbeatTimeout, rc.ElectionTimeout, iv)
	}
	return ""
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
