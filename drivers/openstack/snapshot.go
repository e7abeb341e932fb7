package openstack

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/drivers"
)

// Look-ups by instance id and the waits for ACTIVE / gone all read one
// shared list of our servers instead of one request each: a caller joins the
// next list to *start* after it asked (so it sees every create or delete that
// Nova accepted before), at most one list runs at a time, and everybody who
// asked meanwhile shares the following one. Fifty launches waiting together
// cost one list per poll, as a hand-written loop over servers.List would;
// Nova's API (a single eventlet worker in small deployments) is the
// bottleneck of a mass launch, not the client.
type snapshots struct {
	mu      sync.Mutex
	running bool
	next    *snapshot // the list callers are queued on; starts when running ends
}

type snapshot struct {
	done    chan struct{}
	servers []servers.Server
	listed  time.Time // when the list was asked for (the driver's clock)
	err     error
}

// freshServers returns every server tagged ours (in every cloud of the
// driver, deleting ones included), from a list started after the call.
func (d *Driver) freshServers(ctx context.Context) ([]servers.Server, error) {
	all, _, err := d.freshList(ctx)
	return all, err
}

// freshList is freshServers, with the time the list was asked for.
func (d *Driver) freshList(ctx context.Context) ([]servers.Server, time.Time, error) {
	d.snaps.mu.Lock()
	if d.snaps.next == nil {
		d.snaps.next = &snapshot{done: make(chan struct{})}
	}
	s := d.snaps.next
	if !d.snaps.running {
		d.startSnapshot()
	}
	d.snaps.mu.Unlock()
	select {
	case <-s.done:
		return s.servers, s.listed, s.err
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

// startSnapshot runs the queued list (caller holds d.snaps.mu).
func (d *Driver) startSnapshot() {
	s := d.snaps.next
	d.snaps.next = nil
	d.snaps.running = true
	go func() {
		// not the caller's context: others share this list
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(d.cfg.RequestTimeout))
		s.listed = d.clk.Now()
		s.servers, s.err = d.listTagged(ctx)
		d.tombs.sighted(s.servers, d.clk.Now())
		if s.err == nil {
			d.pruneDelFails(nil, s.servers, s.listed)
		}
		cancel()
		close(s.done)
		d.snaps.mu.Lock()
		d.snaps.running = false
		if d.snaps.next != nil {
			d.startSnapshot()
		}
		d.snaps.mu.Unlock()
	}()
}

// listTagged lists the servers tagged ours once per distinct compute client.
func (d *Driver) listTagged(ctx context.Context) ([]servers.Server, error) {
	seen := map[*gophercloud.ServiceClient]bool{}
	var out []servers.Server
	for _, dc := range sortedKeys(d.clients) {
		client := d.clients[dc].Compute
		if seen[client] {
			continue
		}
		seen[client] = true
		page, err := servers.List(client, servers.ListOpts{Tags: Tag}).AllPages(ctx)
		if err != nil {
			return nil, classify("list servers", err)
		}
		all, err := servers.ExtractServers(page)
		if err != nil {
			return nil, err
		}
		for _, s := range all {
			// a DC name may exist in two clouds: keep the server only from the DC's own cloud
			if dcOf := s.Metadata[drivers.MetaDC]; d.clients[dcOf].Compute == client {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// match returns our servers with instance id in dc, oldest first (newer).
func match(all []servers.Server, dc, id string, withDeleting bool) []servers.Server {
	var out []servers.Server
	for _, s := range all {
		if s.Metadata[drivers.MetaID] == id && s.Metadata[drivers.MetaDC] == dc &&
			s.Metadata[drivers.MetaManagedBy] == managedBy && (withDeleting || !gone(s)) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return newer(ageOf(out[j]), ageOf(out[i])) })
	return out
}
