package clock

import (
	"context"
	"time"
)

// Sleep waits d on clk, or until ctx ends (then it returns ctx.Err() and
// stops its timer).
func Sleep(ctx context.Context, clk Clock, d time.Duration) error {
	done := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
