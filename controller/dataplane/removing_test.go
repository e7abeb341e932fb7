package dataplane

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
)

// An instance being removed (RemoveInstance, Check, watchExit) is out of
// the plane's state while its rule update runs without the plane's lock,
// and is deleted after it (its namespace and ports still exist until
// then). Its removing set (removing.go) keeps its index taken and makes
// Close see it; a removal whose update failed is deleted once a later
// update is on the switch, or at Close.

// deletions records the instances the bed's plane deletes.
type deletions struct {
	mu  sync.Mutex
	ins []*netns.Instance
}

func (d *deletions) all() []*netns.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*netns.Instance(nil), d.ins...)
}

// instances gives DC 0 of the bed instance objects for the indexes (live
// already) and records their deletions.
func (b *takeoverBed) instances(idxs ...uint8) (map[uint8]*netns.Instance, *deletions) {
	st := b.p.dcs[0]
	st.insts[0] = map[uint8]*netns.Instance{}
	insts := map[uint8]*netns.Instance{} // a copy: removals change the plane's
	for _, idx := range idxs {
		name := "s1x" + string(rune('0'+idx))
		insts[idx] = &netns.Instance{NS: name, InName: name + "i", OutName: name + "o"}
		st.insts[0][idx] = insts[idx]
	}
	d := &deletions{}
	b.p.deleteInst = func(_ context.Context, in *netns.Instance) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.ins = append(d.ins, in)
		return nil
	}
	return insts, d
}

// removalInFlight starts RemoveInstance of DC 0's instance 4 and returns
// once its bundle is held on the switch.
func (b *takeoverBed) removalInFlight(t *testing.T) (func(), <-chan error) {
	t.Helper()
	g, release := b.gate(t, 0, b.sw)
	done := make(chan error, 1)
	go func() { done <- b.p.RemoveInstance(context.Background(), 0, 1, 4) }()
	<-g.entered
	return release, done
}

// While an instance's removal runs, its index cannot be added again: the
// new instance would get the old one's namespace and port names (its
// creation fails and its cleanup deletes the old instance, or the old
// one's deletion kills the new one). Before, AddInstance passed its check
// and created the instance.
func TestAnIndexBeingRemovedIsNotAddedAgain(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	b.secondInstance(t)
	insts, dels := b.instances(3, 4)
	in4 := insts[4]
	release, done := b.removalInFlight(t)
	_, err := b.p.AddInstance(ctx, 0, 1, 4, netns.Firewall)
	if err == nil || !strings.Contains(err.Error(), "stage 1 index 4 of dc0 is being removed") {
		t.Fatalf("AddInstance of an index being removed: %v, want \"being removed\"", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := dels.all(); len(got) != 1 || got[0] != in4 {
		t.Fatalf("deleted %v, want the removed instance", got)
	}
	if _, err := b.p.AddInstance(ctx, 0, 1, 4, netns.Firewall); err != nil && strings.Contains(err.Error(), "being removed") {
		t.Fatalf("AddInstance after the removal ended: %v", err)
	}
}

// A second RemoveInstance of an instance whose removal runs does not
// report it removed before the first is done: with a context that ends
// it reports the removal still running; otherwise it returns once the
// instance is deleted. Before, it returned nil at once (the instance
// still running, the switch still sending to it).
func TestASecondRemovalWaitsForTheFirst(t *testing.T) {
	b := newTakeoverBed(t)
	b.secondInstance(t)
	_, dels := b.instances(3, 4)
	release, first := b.removalInFlight(t)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.p.RemoveInstance(ended, 0, 1, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("a second RemoveInstance while the first's update runs: %v, want it still being removed (%v)", err, context.Canceled)
	}
	second := make(chan []*netns.Instance, 1)
	go func() {
		if err := b.p.RemoveInstance(context.Background(), 0, 1, 4); err != nil {
			t.Error(err)
		}
		second <- dels.all() // what was deleted when it returned
	}()
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := <-second; len(got) != 1 {
		t.Fatalf("the second RemoveInstance returned with %d instances deleted, want the first's 1", len(got))
	}
	if n := len(b.sw.forget); n != 1 {
		t.Errorf("%d rule updates, want the first removal's 1", n)
	}
}

// A removal whose update failed keeps the instance (the switch may still
// send to it) and its index; a later successful update moves its flows,
// then it is deleted. Before, it was out of the plane's state and never
// deleted (not by Close either).
func TestAFailedRemovalIsDeletedOnceAnUpdateCoversIt(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	b.secondInstance(t)
	insts, dels := b.instances(3, 4)
	b.sw.err = errors.New("ovs-ofctl: timed out")
	if err := b.p.RemoveInstance(ctx, 0, 1, 4); !errors.Is(err, b.sw.err) {
		t.Fatalf("RemoveInstance with a failing switch: %v, want %v", err, b.sw.err)
	}
	if got := dels.all(); len(got) != 0 {
		t.Fatalf("deleted %d instances whose flows may still go to them", len(got))
	}
	if _, err := b.p.AddInstance(ctx, 0, 1, 4, netns.Firewall); err == nil || !strings.Contains(err.Error(), "being removed") {
		t.Fatalf("AddInstance of a failed removal's index: %v, want \"being removed\"", err)
	}
	b.sw.err = nil
	if err := b.p.Sync(ctx, 0); err != nil {
		t.Fatal(err)
	}
	b.p.mu.Lock()
	b.p.noteApplied(0, st)
	r := st.removing[0][4]
	b.p.mu.Unlock()
	if r != nil {
		<-r.done // the deletion the successful update started
	}
	if got := dels.all(); len(got) != 1 || got[0] != insts[4] {
		t.Fatalf("after a successful update, deleted %v, want the removed instance", got)
	}
}

// Close deletes an instance whose removal's update failed (pending), and
// a RemoveInstance of it again runs the update and deletes it.
func TestCloseDeletesAPendingRemoval(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"Close", "RemoveInstance again"} {
		t.Run(how, func(t *testing.T) {
			b := newTakeoverBed(t)
			st := b.p.dcs[0]
			b.secondInstance(t)
			insts, dels := b.instances(3, 4)
			b.sw.err = errors.New("ovs-ofctl: timed out")
			if err := b.p.RemoveInstance(ctx, 0, 1, 4); err == nil {
				t.Fatal("RemoveInstance with a failing switch succeeded")
			}
			b.sw.err = nil
			var err error
			if how == "Close" {
				b.p.mu.Lock()
				err = b.p.stopUpdates(ctx) // Close's part before the bridges go
				b.p.mu.Unlock()
			} else {
				err = b.p.RemoveInstance(ctx, 0, 1, 4)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dels.all(); len(got) != 1 || got[0] != insts[4] {
				t.Fatalf("deleted %v, want the pending removal's instance", got)
			}
			if n := len(st.removing[0]); n != 0 {
				t.Errorf("%d instances still being removed", n)
			}
		})
	}
}

// An instance whose forwarder exited while the plane closes: its update
// finds the plane closed, which is no error (Close deletes the bridges);
// the instance is deleted. Before, OnError got "dataplane: closed".
func TestAnExitDuringCloseIsNoError(t *testing.T) {
	b := newTakeoverBed(t)
	b.secondInstance(t)
	insts, dels := b.instances(3, 4)
	var fails []Failure
	b.p.cfg.OnFailure = func(f Failure) { fails = append(fails, f) }
	b.p.dcs[0].closed = true // stopApplies ran
	b.p.instanceExited(0, 1, 4, insts[4], time.Now())
	if len(b.errs) != 0 {
		t.Errorf("errors reported: %v, want none", b.errs)
	}
	if len(fails) != 1 || fails[0].Index != 4 {
		t.Errorf("failures %v, want instance 4's", fails)
	}
	if got := dels.all(); len(got) != 1 || got[0] != insts[4] {
		t.Errorf("deleted %v, want the exited instance", got)
	}
}

// newVanishedBed is the takeover bed with firewall instances 3, 4 and 5
// (instance objects, deletions recorded) of which 3's and 4's ports
// vanished (the link read sees 5's only).
func newVanishedBed(t *testing.T) (*takeoverBed, *deletions) {
	t.Helper()
	b := newTakeoverBed(t)
	if err := b.t.SetInstances(1, []routing.InstanceLoad{{Index: 3}, {Index: 4}, {Index: 5}}); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint8{4, 5} {
		b.p.dcs[0].live[0][idx] = InstancePorts(1, idx)
	}
	insts, dels := b.instances(3, 4, 5)
	b.p.links = func(context.Context) (map[string]bool, error) {
		return map[string]bool{insts[5].InName: true, insts[5].OutName: true}, nil
	}
	return b, dels
}

// Check (standalone) removes every instance of a DC whose ports vanished
// in one rule update, deletes them and reports each as a Failure; when
// that update fails it still reports them (Moved zero) and returns the
// error.
func TestVanishedInstancesOfADCShareOneUpdate(t *testing.T) {
	ctx := context.Background()
	for _, failing := range []bool{false, true} {
		b, dels := newVanishedBed(t)
		var fails []Failure
		b.p.cfg.OnFailure = func(f Failure) { fails = append(fails, f) }
		if failing {
			b.sw.err = errors.New("ovs-ofctl: timed out")
		}
		err := b.p.removeVanished(ctx)
		if failing != (err != nil) || (failing && !errors.Is(err, b.sw.err)) {
			t.Fatalf("failing switch %v: Check returned %v", failing, err)
		}
		if n := len(b.sw.forget); n != 1 {
			t.Errorf("failing switch %v: %d rule updates for 2 vanished instances of one DC, want 1", failing, n)
		}
		if len(fails) != 2 {
			t.Fatalf("failing switch %v: %d failures reported, want 2", failing, len(fails))
		}
		for _, f := range fails {
			if f.Moved.IsZero() != failing {
				t.Errorf("failing switch %v: instance %d reported moved at %v", failing, f.Index, f.Moved)
			}
		}
		if got := dels.all(); len(got) != 2 {
			t.Errorf("failing switch %v: %d instances deleted, want the 2 vanished", failing, len(got))
		}
	}
}

// Close while Check deletes two vanished instances of a DC: Close waits
// under the plane's lock for each removal to end, so Check deletes both
// before it takes the lock again (it took it after each deletion before:
// a deadlock, named by -timeout).
func TestCloseDuringChecksDeletionsEnds(t *testing.T) {
	ctx := context.Background()
	b, dels := newVanishedBed(t)
	record := b.p.deleteInst
	first, goOn := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.p.deleteInst = func(ctx context.Context, in *netns.Instance) error {
		once.Do(func() { close(first); <-goOn })
		return record(ctx, in)
	}
	checked := make(chan error, 1)
	go func() { checked <- b.p.removeVanished(ctx) }()
	<-first // Check deletes the first vanished instance
	closed := make(chan error, 1)
	go func() {
		b.p.mu.Lock()
		defer b.p.mu.Unlock()
		closed <- b.p.stopUpdates(ctx)
	}()
	for b.p.mu.TryLock() { // until Close holds the lock, waiting for the removals
		b.p.mu.Unlock()
		runtime.Gosched()
	}
	close(goOn)
	if err := errors.Join(<-closed, <-checked); err != nil {
		t.Fatal(err)
	}
	if got := dels.all(); len(got) != 2 {
		t.Errorf("%d instances deleted, want the 2 vanished", len(got))
	}
}
