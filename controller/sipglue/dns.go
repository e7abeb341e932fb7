package sipglue

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
)

// Service names published in every DC zone (controller/discovery).
const (
	ServicePCSCF = "pcscf"
	ServiceSCSCF = "scscf"
)

// Zone is one DC's DNS zone: controller/discovery.Server satisfies it.
type Zone interface {
	SetRecords(service string, addrs []netip.AddrPort) error
}

// Discovery publishes the routable CP instances of every DC in the DC
// zones (paper 4.4): the P-CSCFs of a DC in its own zone, the S-CSCFs
// (which all live in one DC) in every zone, so that each DC's P-CSCFs find
// them through their own DNS server.
type Discovery struct {
	pcscf, scscf string
	zones        map[string]Zone
	onErr        func(error)

	mu      sync.Mutex
	scscfs  map[string][]netip.AddrPort // DC → published S-CSCFs of that DC
	lastS   []netip.AddrPort
	onSCSCF func(all []netip.AddrPort)
}

// OnSCSCFChange sets f to run (in its own goroutine) after the published
// S-CSCF set changed, with the new set: e.g. FlushDNSCaches on every P-CSCF,
// so that a removed S-CSCF gets no new request even from a P-CSCF whose DNS
// cache still holds it.
func (d *Discovery) OnSCSCFChange(f func(all []netip.AddrPort)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onSCSCF = f
}

// NewDiscovery returns a publisher for the zones by DC name; pcscf and scscf
// are the VNF names of the P-CSCF and S-CSCF. onErr hears about addresses
// that cannot be published (nil: ignored).
func NewDiscovery(pcscf, scscf string, zones map[string]Zone, onErr func(error)) (*Discovery, error) {
	if pcscf == "" || scscf == "" || pcscf == scscf {
		return nil, fmt.Errorf("sipglue: NewDiscovery: VNF names %q and %q must be distinct and non-empty", pcscf, scscf)
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("sipglue: NewDiscovery: zones: none")
	}
	if onErr == nil {
		onErr = func(error) {}
	}
	z := make(map[string]Zone, len(zones))
	for dc, s := range zones {
		if s == nil {
			return nil, fmt.Errorf("sipglue: NewDiscovery: zones[%q]: nil", dc)
		}
		z[dc] = s
	}
	return &Discovery{pcscf: pcscf, scscf: scscf, zones: z, onErr: onErr, scscfs: map[string][]netip.AddrPort{}}, nil
}

// Published returns the addresses new flows may use: the non-overloaded
// instances, or all of them when every one is overloaded (local.PreferNormal).
// Addresses that do not parse are reported through onErr and left out.
func (d *Discovery) published(insts []local.RoutableInstance) []netip.AddrPort {
	var out []netip.AddrPort
	for _, in := range local.PreferNormal(insts) {
		a, err := netip.ParseAddrPort(in.Address)
		if err != nil {
			d.onErr(fmt.Errorf("sipglue: instance %s: address %q: %w", in.ID, in.Address, err))
			continue
		}
		out = append(out, a)
	}
	return out
}

// Update takes DC dc's routable instances of vnf and republishes.
func (d *Discovery) Update(dc, vnf string, insts []local.RoutableInstance) {
	switch vnf {
	case d.pcscf:
		z := d.zones[dc]
		if z == nil {
			d.onErr(fmt.Errorf("sipglue: P-CSCFs of DC %q: no zone", dc))
			return
		}
		if err := z.SetRecords(ServicePCSCF, d.published(insts)); err != nil {
			d.onErr(err)
		}
	case d.scscf:
		d.mu.Lock()
		d.scscfs[dc] = d.published(insts)
		var all []netip.AddrPort
		for _, as := range d.scscfs {
			all = append(all, as...)
		}
		slices.SortFunc(all, func(a, b netip.AddrPort) int { return a.Compare(b) })
		changed := !slices.Equal(all, d.lastS)
		d.lastS = all
		hook := d.onSCSCF
		d.mu.Unlock()
		dcs := make([]string, 0, len(d.zones))
		for z := range d.zones {
			dcs = append(dcs, z)
		}
		slices.Sort(dcs)
		for _, z := range dcs {
			if err := d.zones[z].SetRecords(ServiceSCSCF, all); err != nil {
				d.onErr(err)
			}
		}
		if changed && hook != nil {
			go hook(slices.Clone(all))
		}
	}
}

// Sink returns DC dc's InstanceSink: it publishes in DNS, then passes the
// update on to next (the DC's routing table; nil = none). It never calls
// back into the local controller.
func (d *Discovery) Sink(dc string, next local.InstanceSink) local.InstanceSink {
	return &dcSink{d: d, dc: dc, next: next}
}

var (
	_ local.InstanceSink      = (*dcSink)(nil)
	_ local.InstanceForgetter = (*dcSink)(nil) // the daemon's chain lazySink → dcSink → Router passes Forget on
)

type dcSink struct {
	d    *Discovery
	dc   string
	next local.InstanceSink
}

func (s *dcSink) SetInstances(vnf string, insts []local.RoutableInstance) {
	s.d.Update(s.dc, vnf, insts)
	if s.next != nil {
		s.next.SetInstances(vnf, insts)
	}
}

// Forget passes a gone instance on to next (local.InstanceForgetter): DNS
// follows SetInstances only.
func (s *dcSink) Forget(vnf, id string) {
	if s.next != nil {
		local.ForgetIn(s.next, vnf, id)
	}
}

// FlushDNSCaches empties the DNS cache of every Kamailio whose RPC socket is
// listed ("dns.delete_all"), so that its next request resolves the
// discovery records afresh instead of waiting up to dns_cache_max_ttl.
func FlushDNSCaches(ctx context.Context, call Caller, rpcs []netip.AddrPort) error {
	var errs []error
	for _, a := range rpcs {
		cctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		_, err := call(cctx, a, "dns.delete_all")
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("sipglue: flush DNS cache of %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}
