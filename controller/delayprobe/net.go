package delayprobe

import (
	"fmt"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// Net is a simulated network between the DCs' local controllers on a clock
// (virtual in tests and the simulator): a probe's round trip takes the
// link's one-way delay there and the reverse link's back. Links are set in
// milliseconds and can change while probes run (the large-delay experiment).
type Net struct {
	clk clock.Clock

	mu    sync.Mutex
	delay map[[2]string]time.Duration
	down  map[[2]string]bool
}

// NewNet returns a network whose link i→j has delayMs[i][j] between
// dcs[i] and dcs[j].
func NewNet(clk clock.Clock, dcs []string, delayMs [][]float64) (*Net, error) {
	n := &Net{clk: clk, delay: map[[2]string]time.Duration{}, down: map[[2]string]bool{}}
	if len(delayMs) != len(dcs) {
		return nil, fmt.Errorf("delayprobe: Net: %d rows of delays for %d DCs", len(delayMs), len(dcs))
	}
	for i, row := range delayMs {
		if len(row) != len(dcs) {
			return nil, fmt.Errorf("delayprobe: Net: delays[%d]: %d columns for %d DCs", i, len(row), len(dcs))
		}
		for j, ms := range row {
			if i != j {
				if err := n.Set(dcs[i], dcs[j], ms); err != nil {
					return nil, err
				}
			}
		}
	}
	return n, nil
}

// Set sets the one-way delay of link from→to.
func (n *Net) Set(from, to string, ms float64) error {
	if !(ms >= 0 && ms < 1e7) {
		return fmt.Errorf("delayprobe: Net: delay %s→%s: %g ms is not in [0, 1e7)", from, to, ms)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay[[2]string{from, to}] = time.Duration(ms * float64(time.Millisecond))
	return nil
}

// SetDown makes probes over link from→to (either direction of the round
// trip) fail after a second, as a timeout would.
func (n *Net) SetDown(from, to string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[[2]string{from, to}] = down
}

// Probe implements Transport.
func (n *Net) Probe(from, to string, done func(time.Duration, error)) {
	n.mu.Lock()
	there, ok1 := n.delay[[2]string{from, to}]
	back, ok2 := n.delay[[2]string{to, from}]
	down := n.down[[2]string{from, to}] || n.down[[2]string{to, from}]
	n.mu.Unlock()
	if !ok1 || !ok2 {
		n.clk.AfterFunc(0, func() { done(0, fmt.Errorf("no link %s↔%s", from, to)) })
		return
	}
	if down {
		n.clk.AfterFunc(time.Second, func() { done(0, fmt.Errorf("probe %s→%s timed out", from, to)) })
		return
	}
	rtt := there + back
	n.clk.AfterFunc(rtt, func() { done(rtt, nil) })
}
