// Package novasweep owns the clean-up of the servers a test run left on a
// Nova: it deletes every server carrying a tag — the ones a driver hides
// too, whose delete it cannot know Nova took — and waits until Nova lists
// none, not even one it is still deleting. A server Nova lists again not
// deleting after its DELETE (a lost delete: an aborted build's clean-up
// wrote its state back, or the terminate never came) gets its DELETE
// again, so a run leaves nothing behind. drivers/openstack's integration
// tests and the daemon's real-Nova tests use it.
package novasweep

import (
	"context"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/clock"
)

const (
	// Resend is how long after its DELETE a server Nova still lists not
	// deleting gets the DELETE again (drivers/openstack's reissueEvery).
	Resend = 10 * time.Second
	// the polls back off from pollFirst ×1.5 up to pollMax (WaitGone's)
	pollFirst = 250 * time.Millisecond
	pollMax   = time.Second
)

// Sweep deletes every server that the compute clients list with tag and
// waits until they list none, sending a server's DELETE again every Resend
// while it is listed not deleting. The waits are on clk, at most limit in
// all; the error counts the servers left and the DELETEs sent.
func Sweep(ctx context.Context, computes []*gophercloud.ServiceClient, tag string, clk clock.Clock, limit time.Duration) error {
	end := clk.Now().Add(limit)
	sent := map[string]time.Time{} // Nova id -> its last DELETE
	wait := pollFirst
	for {
		left := 0
		var err error
		for _, c := range computes {
			n, lerr := sweepOnce(ctx, c, tag, clk.Now(), sent)
			left += n
			if lerr != nil {
				err = lerr
			}
		}
		if err == nil && left == 0 {
			return nil
		}
		if !clk.Now().Before(end) {
			return fmt.Errorf("novasweep: %d servers tagged %s left after %s, %d DELETEs sent (last error %v)", left, tag, limit, len(sent), err)
		}
		if serr := clock.Sleep(ctx, clk, wait); serr != nil {
			return fmt.Errorf("novasweep: %d servers tagged %s left: %w (last error %v)", left, tag, serr, err)
		}
		wait = min(wait*3/2, pollMax)
	}
}

// sweepOnce lists the servers of c tagged tag, sends the DELETEs due at
// now (sent: when each server's last one went) and returns how many
// servers it listed.
func sweepOnce(ctx context.Context, c *gophercloud.ServiceClient, tag string, now time.Time, sent map[string]time.Time) (int, error) {
	page, err := servers.List(c, servers.ListOpts{Tags: tag}).AllPages(ctx)
	if err != nil {
		return 0, fmt.Errorf("list servers: %w", err)
	}
	all, err := servers.ExtractServers(page)
	if err != nil {
		return 0, fmt.Errorf("list servers: %w", err)
	}
	for _, s := range all {
		deleting := s.Status == "DELETED" || s.Status == "SOFT_DELETED" || s.TaskState == "deleting"
		if at, ok := sent[s.ID]; deleting || ok && now.Sub(at) < Resend {
			continue // Nova is deleting it, or its DELETE is recent
		}
		sent[s.ID] = now
		if derr := servers.Delete(ctx, c, s.ID).ExtractErr(); derr != nil && !gophercloud.ResponseCodeIs(derr, 404) {
			err = fmt.Errorf("delete server %s: %w", s.ID, derr)
		}
	}
	return len(all), err
}
