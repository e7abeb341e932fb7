package sipglue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/controller/local"
)

type zoneRec struct {
	mu   sync.Mutex
	recs map[string][]netip.AddrPort
	sets int
	err  error
}

func (z *zoneRec) SetRecords(service string, addrs []netip.AddrPort) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.recs == nil {
		z.recs = map[string][]netip.AddrPort{}
	}
	z.recs[service] = slices.Clone(addrs)
	z.sets++
	return z.err
}

type sinkRec struct {
	calls []string
}

func (s *sinkRec) SetInstances(vnf string, insts []local.RoutableInstance) {
	s.calls = append(s.calls, fmt.Sprintf("%s:%d", vnf, len(insts)))
}

func ri(id, addr string, over bool) local.RoutableInstance {
	return local.RoutableInstance{ID: id, Address: addr, Overloaded: over}
}

func aps(ss ...string) []netip.AddrPort {
	out := []netip.AddrPort{}
	for _, s := range ss {
		out = append(out, netip.MustParseAddrPort(s))
	}
	return out
}

func TestDiscoveryPublishes(t *testing.T) {
	z0, z1 := &zoneRec{}, &zoneRec{}
	var errs []error
	d, err := NewDiscovery("pcscf", "scscf", map[string]Zone{"dc0": z0, "dc1": z1}, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatal(err)
	}
	next0 := &sinkRec{}
	s0, s1 := d.Sink("dc0", next0), d.Sink("dc1", nil)

	s1.SetInstances("pcscf", []local.RoutableInstance{ri("b", "127.11.1.1:5060", false), ri("c", "127.11.1.2:5060", true)})
	if got := z1.recs["pcscf"]; !slices.Equal(got, aps("127.11.1.1:5060")) {
		t.Fatalf("dc1 pcscf %v: the overloaded one must leave DNS", got)
	}
	if _, ok := z0.recs["pcscf"]; ok {
		t.Fatal("dc1's P-CSCFs published in dc0's zone")
	}
	s1.SetInstances("pcscf", []local.RoutableInstance{ri("c", "127.11.1.2:5060", true)})
	if got := z1.recs["pcscf"]; !slices.Equal(got, aps("127.11.1.2:5060")) {
		t.Fatalf("all overloaded: %v, want all of them", got)
	}
	s1.SetInstances("pcscf", nil)
	if got := z1.recs["pcscf"]; len(got) != 0 {
		t.Fatalf("no routable P-CSCF (all buffered): %v, want none", got)
	}

	s0.SetInstances("scscf", []local.RoutableInstance{ri("s2", "127.10.2.2:5060", false), ri("s1", "127.10.2.1:5060", false)})
	for name, z := range map[string]*zoneRec{"dc0": z0, "dc1": z1} {
		if got := z.recs["scscf"]; !slices.Equal(got, aps("127.10.2.1:5060", "127.10.2.2:5060")) {
			t.Fatalf("%s scscf %v: S-CSCFs go in every zone", name, got)
		}
	}
	s0.SetInstances("scscf", []local.RoutableInstance{ri("s1", "127.10.2.1:5060", false)}) // s2 buffered
	if got := z1.recs["scscf"]; !slices.Equal(got, aps("127.10.2.1:5060")) {
		t.Fatalf("buffered S-CSCF still published: %v", got)
	}
	if !slices.Equal(next0.calls, []string{"scscf:2", "scscf:1"}) {
		t.Fatalf("next sink got %v, want every update", next0.calls)
	}
	s0.SetInstances("firewall", []local.RoutableInstance{ri("f", "x", false)}) // not CP: only passed on
	if next0.calls[len(next0.calls)-1] != "firewall:1" || len(errs) != 0 {
		t.Fatalf("firewall update: next %v errs %v", next0.calls, errs)
	}
	s0.SetInstances("pcscf", []local.RoutableInstance{ri("bad", "not-an-address", false), ri("ok", "127.10.1.1:5060", false)})
	if len(errs) != 1 || !slices.Equal(z0.recs["pcscf"], aps("127.10.1.1:5060")) {
		t.Fatalf("bad address: errs %v, records %v", errs, z0.recs["pcscf"])
	}
	z0.err = errors.New("zone down")
	s0.SetInstances("pcscf", nil)
	if len(errs) != 2 {
		t.Fatalf("zone error not reported: %v", errs)
	}
	d.Sink("dc7", nil).SetInstances("pcscf", nil)
	if len(errs) != 3 {
		t.Fatalf("unknown DC not reported: %v", errs)
	}
}

func TestNewDiscoveryErrors(t *testing.T) {
	z := map[string]Zone{"dc0": &zoneRec{}}
	for _, tc := range []struct {
		name  string
		p, s  string
		zones map[string]Zone
	}{
		{"empty name", "", "scscf", z},
		{"same names", "x", "x", z},
		{"no zone", "pcscf", "scscf", nil},
		{"nil zone", "pcscf", "scscf", map[string]Zone{"dc0": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDiscovery(tc.p, tc.s, tc.zones, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Property: whatever the sequence of updates, each zone serves exactly its
// own DC's P-CSCFs and every DC's S-CSCFs, preferring non-overloaded ones,
// and the wrapped sink sees every update.
func TestDiscoveryProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dcs := []string{"dc0", "dc1", "dc2"}
		zones := map[string]*zoneRec{}
		zs := map[string]Zone{}
		for _, dc := range dcs {
			zones[dc] = &zoneRec{}
			zs[dc] = zones[dc]
		}
		d, err := NewDiscovery("pcscf", "scscf", zs, nil)
		if err != nil {
			t.Fatal(err)
		}
		state := map[string]map[string][]local.RoutableInstance{"pcscf": {}, "scscf": {}}
		next := &sinkRec{}
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			dc := rapid.SampledFrom(dcs).Draw(t, "dc")
			vnf := rapid.SampledFrom([]string{"pcscf", "scscf"}).Draw(t, "vnf")
			n := rapid.IntRange(0, 4).Draw(t, "n")
			var insts []local.RoutableInstance
			for k := 1; k <= n; k++ {
				if rapid.Bool().Draw(t, "present") {
					insts = append(insts, ri(fmt.Sprint(k), fmt.Sprintf("127.%d.%d.%d:5060", 10+slices.Index(dcs, dc), map[string]int{"pcscf": 1, "scscf": 2}[vnf], k), rapid.Bool().Draw(t, "over")))
				}
			}
			state[vnf][dc] = insts
			d.Sink(dc, next).SetInstances(vnf, insts)
		}
		want := func(insts []local.RoutableInstance) []netip.AddrPort {
			out := []netip.AddrPort{}
			for _, in := range local.PreferNormal(insts) {
				out = append(out, netip.MustParseAddrPort(in.Address))
			}
			slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
			return out
		}
		var allS []netip.AddrPort
		for _, dc := range dcs {
			allS = append(allS, want(state["scscf"][dc])...)
		}
		slices.SortFunc(allS, func(a, b netip.AddrPort) int { return a.Compare(b) })
		for _, dc := range dcs {
			z := zones[dc]
			if _, touched := state["pcscf"][dc]; touched {
				if got := z.recs["pcscf"]; !slices.Equal(append([]netip.AddrPort{}, got...), want(state["pcscf"][dc])) {
					t.Fatalf("%s pcscf %v, want %v", dc, got, want(state["pcscf"][dc]))
				}
			}
			if len(state["scscf"]) > 0 {
				if got := z.recs["scscf"]; !slices.Equal(append([]netip.AddrPort{}, got...), allS) {
					t.Fatalf("%s scscf %v, want %v", dc, got, allS)
				}
			}
		}
		if len(next.calls) != steps {
			t.Fatalf("next sink saw %d of %d updates", len(next.calls), steps)
		}
	})
}

// The sink drives a real discovery server.
func TestDiscoveryWithServer(t *testing.T) {
	srv, err := discovery.New(discovery.Options{Zone: "dc0.ims.local"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDiscovery("pcscf", "scscf", map[string]Zone{"dc0": srv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Sink("dc0", nil).SetInstances("scscf", []local.RoutableInstance{ri("s1", "127.10.2.1:5060", false), ri("s2", "127.10.2.2:5060", true)})
	if got := srv.Records("scscf"); !slices.Equal(got, aps("127.10.2.1:5060")) {
		t.Fatalf("server records %v", got)
	}
}

// A change of the S-CSCF set runs the hook once with the new set; an
// update that changes nothing does not.
func TestOnSCSCFChangeAndFlush(t *testing.T) {
	d, err := NewDiscovery("pcscf", "scscf", map[string]Zone{"dc0": &zoneRec{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []netip.AddrPort, 4)
	d.OnSCSCFChange(func(all []netip.AddrPort) { got <- all })
	s := d.Sink("dc0", nil)
	two := []local.RoutableInstance{ri("s1", "127.10.2.1:5060", false), ri("s2", "127.10.2.2:5060", false)}
	s.SetInstances("scscf", two)
	if a := <-got; !slices.Equal(a, aps("127.10.2.1:5060", "127.10.2.2:5060")) {
		t.Fatalf("hook got %v", a)
	}
	s.SetInstances("scscf", two)                                                          // no change
	s.SetInstances("pcscf", two[:1])                                                      // not S-CSCFs
	s.SetInstances("scscf", []local.RoutableInstance{ri("s1", "127.10.2.1:5060", false)}) // s2 removed
	if a := <-got; !slices.Equal(a, aps("127.10.2.1:5060")) {
		t.Fatalf("hook got %v after the removal (an unchanged update must not run it)", a)
	}

	var calls []string
	call := func(_ context.Context, rpc netip.AddrPort, method string, _ ...any) (json.RawMessage, error) {
		calls = append(calls, rpc.String()+" "+method)
		if rpc.Port() == 1 {
			return nil, errors.New("no answer")
		}
		return json.RawMessage(`0`), nil
	}
	err = FlushDNSCaches(context.Background(), call, aps("127.10.1.1:8090", "127.10.1.2:1", "127.11.1.1:8090"))
	if err == nil || !strings.Contains(err.Error(), "127.10.1.2:1") {
		t.Fatalf("error %v, want the one failed flush named", err)
	}
	if !slices.Equal(calls, []string{"127.10.1.1:8090 dns.delete_all", "127.10.1.2:1 dns.delete_all", "127.11.1.1:8090 dns.delete_all"}) {
		t.Fatalf("calls %v: every P-CSCF must be flushed, even after a failure", calls)
	}
}

func (s *sinkRec) Forget(vnf, id string) { s.calls = append(s.calls, "forget "+vnf+" "+id) }

// A gone instance reaches the routing sink behind the DNS one (the local
// controller calls Forget on the outermost sink only): else a destroyed
// instance's routing index is never freed. A DC without a next sink
// ignores it.
func TestDiscoverySinkPassesForgetOn(t *testing.T) {
	d, err := NewDiscovery("pcscf", "scscf", map[string]Zone{"dc0": &zoneRec{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := &sinkRec{}
	local.ForgetIn(d.Sink("dc0", next), "ids", "ids-3")
	local.ForgetIn(d.Sink("dc0", nil), "ids", "ids-4")
	if want := []string{"forget ids ids-3"}; !slices.Equal(next.calls, want) {
		t.Fatalf("next sink got %v, want %v", next.calls, want)
	}
}
