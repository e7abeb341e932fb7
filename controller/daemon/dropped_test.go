package daemon

import (
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
)

// heldStore holds the round engine's first RoundStarted commit until the
// test releases it: a raft commit still waiting for its quorum.
type heldStore struct {
	global.Store
	once             sync.Once
	entered, release chan struct{}
}

func (h *heldStore) Apply(c fsm.Command) error {
	if _, ok := c.(fsm.RoundStarted); ok {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.entered)
			<-h.release
		}
	}
	return h.Store.Apply(c)
}

// Leadership moves away from n1 while its round engine's first commit is in
// flight: the engine is stopped (FollowLeadership), the commit's result
// comes back afterwards and is dropped, and n1's /metrics counts it.
func TestDroppedCommitInTheMetrics(t *testing.T) {
	held := &heldStore{entered: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(held.release) }) }
	ds := startClusterOpts(t, false, func(_ int, cfg *Config) {
		cfg.Traffic = nil
		cfg.Policy.IntervalSeconds = 2
	}, func(i int, o *Options) {
		if i == 0 {
			o.wrapStore = func(s global.Store) global.Store { held.Store = s; return held }
		}
	})
	t.Cleanup(release) // before the nodes' shutdown (clean-ups run last first)
	n1 := ds[0]
	select {
	case <-held.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("n1's round engine committed no RoundStarted in 30 s")
	}
	// n1 leads (only a leader's engine commits); hand the lead over while
	// the commit is held, as a leadership change during a quorum write
	eventually(t, 20*time.Second, "the lead to leave n1", func() bool {
		if !n1.engine.Running() {
			return true
		}
		_ = n1.Node().Raft.LeadershipTransfer().Error()
		return !n1.engine.Running()
	})
	release()
	eventually(t, 20*time.Second, "n1's engine to drop the commit", func() bool { return n1.engine.Stats().DroppedCommits == 1 })
	text := scrape(t, n1.URL())
	for series, want := range map[string]string{"ims_orch_dropped_commits_total": "1", "ims_orch_dropped_plans_total": "0"} {
		m := regexp.MustCompile(`(?m)^` + series + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil || m[1] != want {
			t.Errorf("n1's /metrics: %s = %v, want %s:\n%s", series, m, want, grep(text, "dropped"))
		}
	}
}
