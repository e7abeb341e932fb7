package ovs

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkCounters are a link's packet counters (the kernel's IFLA_STATS64, what
// `ip -s link` shows).
type LinkCounters struct{ RxPackets, TxPackets uint64 }

// dumpTries bounds the re-reads of a link dump that a concurrent link change
// interrupted (NLM_F_DUMP_INTR: the kernel says the list may be incomplete).
const dumpTries = 10

// Links reads every link of network namespace ns with its counters in one
// rtnetlink dump, from a netlink socket opened inside ns: no process is
// started (`ip netns exec ns ip -s -j link` forks twice and remounts /sys).
// A dump that a concurrent link change interrupted is read again: a partial
// list would look like vanished ports.
func Links(ns string) (map[string]LinkCounters, error) {
	nh, err := handleIn(ns)
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	for try := 1; ; try++ {
		links, err := nh.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < dumpTries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netns %s: link dump: %w", ns, err)
		}
		out := make(map[string]LinkCounters, len(links))
		for _, l := range links {
			a := l.Attrs()
			var c LinkCounters
			if s := a.Statistics; s != nil {
				c = LinkCounters{RxPackets: s.RxPackets, TxPackets: s.TxPackets}
			}
			out[a.Name] = c
		}
		return out, nil
	}
}

// LinkNames lists the names of the network links in namespace ns (one
// netlink dump, see Links).
func LinkNames(_ context.Context, ns string) (map[string]bool, error) {
	links, err := Links(ns)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(links))
	for n := range links {
		have[n] = true
	}
	return have, nil
}

// WatchLinkDeletions calls gone with the name of every link deleted in
// namespace ns (an RTM_DELLINK event of the kernel's link group, e.g. a veth
// end whose peer's namespace was deleted) until ctx ends. It returns once
// the subscription is in place; the returned channel is closed when the
// watch ends: ctx ended, or the subscription failed (its error is passed to
// failed first; the caller re-checks and subscribes again).
func WatchLinkDeletions(ctx context.Context, ns string, gone func(name string), failed func(error)) (<-chan struct{}, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(done) })
	// the subscription's socket is made inside ns (inNetns, not the
	// library's Namespace option) and keeps that namespace
	err := inNetns(ns, func() error {
		return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ErrorCallback: func(err error) {
			if ctx.Err() == nil && failed != nil {
				failed(fmt.Errorf("netns %s: link events: %w", ns, err))
			}
		}})
	})
	if err != nil {
		if stop() {
			close(done)
		}
		return nil, fmt.Errorf("netns %s: link events: %w", ns, err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for u := range ch { // closed when the socket is closed or fails
			if u.Header.Type == unix.RTM_DELLINK && u.Link != nil {
				gone(u.Link.Attrs().Name)
			}
		}
		if stop() { // the subscription failed before ctx ended
			close(done)
		}
	}()
	return ended, nil
}
