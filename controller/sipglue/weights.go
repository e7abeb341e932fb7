package sipglue

import (
	"math"
	"net/netip"
	"sort"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// MaxWeight is the SRV weight of an idle P-CSCF; a P-CSCF's weight is its
// headroom in thousandths (LoadWeight).
const MaxWeight = 1000

// LoadWeight is the SRV weight of an instance from its last measured load:
// its headroom, MaxWeight·(1 − u) with u = max(CPU/th.CPU, PktRate/th.PktRate)
// (the load relative to the VNF's overload thresholds; a zero threshold is
// left out) clamped to [0, 1], and at least 1 (a routable instance stays
// reachable; an overloaded one leaves the record set instead, see
// Discovery.Update).
// An instance without statistics yet (just launched) counts as idle, so a
// scaled-out P-CSCF takes the new registrations first (RFC 2782 clients
// choose in proportion to the weights).
func LoadWeight(s local.Stats, th vnf.Thresholds) uint16 {
	u := 0.0
	if th.CPU > 0 {
		u = s.CPU / th.CPU
	}
	if th.PktRate > 0 {
		u = math.Max(u, s.PktRate/th.PktRate)
	}
	if math.IsNaN(u) || u < 0 {
		u = 0
	}
	w := math.Round(MaxWeight * (1 - math.Min(u, 1)))
	return uint16(math.Max(w, 1))
}

// WeightedZone is a Zone that also publishes SRV weights
// (controller/discovery.Server).
type WeightedZone interface {
	Zone
	SetWeights(service string, w map[netip.AddrPort]uint16) error
}

// PCSCFWeights returns the SRV weight of every P-CSCF of insts (the DC's
// instances, as the local controller holds them) that has an address.
func PCSCFWeights(pcscf string, insts []local.Instance, th vnf.Thresholds) map[netip.AddrPort]uint16 {
	out := map[netip.AddrPort]uint16{}
	for _, in := range insts {
		if in.VNF != pcscf {
			continue
		}
		a, err := netip.ParseAddrPort(in.Address)
		if err != nil {
			continue
		}
		out[a] = LoadWeight(in.Last, th)
	}
	return out
}

// WeightSource is one DC's instances (the local controller's Instances).
type WeightSource func() []local.Instance

// StartPCSCFWeights sets the SRV weights of every DC's P-CSCFs from their
// measured load every period on clk (the agents report every second), until
// the returned stop is called. Zones that publish no weights are skipped;
// errors go to the Discovery's onErr.
func (d *Discovery) StartPCSCFWeights(clk clock.Clock, period time.Duration, th vnf.Thresholds, dcs map[string]WeightSource) (stop func()) {
	names := make([]string, 0, len(dcs))
	for dc := range dcs {
		names = append(names, dc)
	}
	sort.Strings(names)
	update := func() bool {
		for _, dc := range names {
			z, ok := d.zones[dc].(WeightedZone)
			if !ok {
				continue
			}
			if err := z.SetWeights(ServicePCSCF, PCSCFWeights(d.pcscf, dcs[dc](), th)); err != nil {
				d.onErr(err)
			}
		}
		return true
	}
	update()
	r := clock.Every(clk, period, update)
	return r.Stop
}
