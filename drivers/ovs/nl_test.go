package ovs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Every netlink socket this package opens in another namespace (Links, the
// handle of delLink, the link-event subscription) is made through inNetns,
// never through vishvananda/netlink's own namespace switch, which ignores a
// failed move back and unlocks the thread (it would then run any goroutine
// inside the namespace). With the move back failing, inNetns keeps the
// thread locked, so Go ends it with the goroutine: each such thread is gone
// afterwards, and no thread of this process is left in the namespace.
// (The injected failure does move the thread back first, so that the main
// thread, which Go never ends, cannot be left in the namespace.)
func TestNetlinkSocketsLeaveNoThreadInTheNamespace(t *testing.T) {
	ns := tempNetns(t)
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &st); err != nil {
		t.Fatal(err)
	}
	target := st.Ino
	var mu sync.Mutex
	var into int
	var failedBack []int // threads whose move back "failed"
	setns = func(h netns.NsHandle) error {
		var hs unix.Stat_t
		if err := unix.Fstat(int(h), &hs); err != nil {
			return err
		}
		if err := netns.Set(h); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if hs.Ino == target {
			into++
			return nil
		}
		failedBack = append(failedBack, unix.Gettid())
		return errors.New("injected: setns back failed")
	}
	t.Cleanup(func() { setns = netns.Set })
	if _, err := Links(ns); err != nil {
		t.Fatal(err)
	}
	if err := delLink(ns, "s7fnone"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended, err := WatchLinkDeletions(ctx, ns, func(string) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-ended }()
	mu.Lock()
	n, tids := into, append([]int(nil), failedBack...)
	mu.Unlock()
	if n != 3 || len(tids) != 3 {
		t.Fatalf("%d moves into %s and %d failed moves back, want 3 and 3: a netlink socket was opened outside inNetns", n, ns, len(tids))
	}
	inNs := func() []string {
		ents, _ := os.ReadDir("/proc/self/task")
		var out []string
		for _, e := range ents {
			l, err := os.Readlink(fmt.Sprintf("/proc/self/task/%s/ns/net", e.Name()))
			if err == nil && l == fmt.Sprintf("net:[%d]", target) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second) // the runtime ends the threads after their goroutines
	for {
		var alive []int
		for _, tid := range tids {
			if tid == os.Getpid() {
				continue // the main thread is never ended (it was moved back)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err == nil {
				alive = append(alive, tid)
			}
		}
		left := inNs()
		if len(alive) == 0 && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads whose move back failed still run: %v; threads in %s: %s", alive, ns, strings.Join(left, " "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
