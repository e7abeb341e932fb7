package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ims-orch/ims-orch/placement/vnf"
)

// VNFType describes how one VNF behaves under load: its catalog entry
// (name, plane, capacity, Table 2 thresholds) and the simulator's model of it.
type VNFType struct {
	vnf.Type
	// TriggerUtil is the utilisation ρ at which CPU and memory reach their
	// thresholds (0.9 DP, 0.7 CP by default).
	TriggerUtil float64
	// MemBase is the memory use of an idle instance (percent).
	MemBase float64
	// PktPerUnit is how many input packets one unit of load is (2 SIP
	// messages per transaction for CP: the request and its final response;
	// 1 for DP).
	PktPerUnit float64
	// BufferSec is the buffer of the instance in seconds of service: the
	// largest queueing delay is 1000·BufferSec ms.
	BufferSec float64
}

// Alpha is the CPU scale α: CPU % = min(100, 100·α·ρ).
func (t VNFType) Alpha() float64 { return t.Thresholds.CPU / (100 * t.TriggerUtil) }

// MemSlope is the memory slope: Mem % = min(100, MemBase + MemSlope·ρ).
func (t VNFType) MemSlope() float64 { return (t.Thresholds.Mem - t.MemBase) / t.TriggerUtil }

func (t VNFType) validate(field string) error {
	switch {
	case strings.TrimSpace(t.Name) == "":
		return fmt.Errorf("%s.name: must not be empty", field)
	case t.Plane != vnf.ControlPlane && t.Plane != vnf.DataPlane:
		return fmt.Errorf("%s.plane %q: must be %q or %q", field, t.Plane, vnf.ControlPlane, vnf.DataPlane)
	}
	for _, f := range []struct {
		n string
		x float64
	}{{"capacity", t.Capacity}, {"cpuThr", t.Thresholds.CPU}, {"memThr", t.Thresholds.Mem}, {"pktThr", t.Thresholds.PktRate}, {"triggerUtil", t.TriggerUtil}, {"pktPerUnit", t.PktPerUnit}, {"bufferSec", t.BufferSec}} {
		if !(f.x > 0) || math.IsInf(f.x, 0) {
			return fmt.Errorf("%s.%s %v: must be a finite number > 0", field, f.n, f.x)
		}
	}
	if t.Thresholds.CPU > 100 || t.Thresholds.Mem > 100 {
		return fmt.Errorf("%s: cpuThr %v and memThr %v: must be at most 100 percent", field, t.Thresholds.CPU, t.Thresholds.Mem)
	}
	if t.MemBase < 0 || t.MemBase >= t.Thresholds.Mem || math.IsNaN(t.MemBase) {
		return fmt.Errorf("%s.memBase %v: must be in [0, memThr %v)", field, t.MemBase, t.Thresholds.Mem)
	}
	return nil
}

// Catalog maps normalised VNF names (vnf.Normalize) to their types.
type Catalog struct {
	byKey map[string]VNFType
	names []string
}

// NewCatalog builds a catalog; errors name the bad entry and field.
func NewCatalog(types ...VNFType) (*Catalog, error) {
	c := &Catalog{byKey: map[string]VNFType{}}
	for i, t := range types {
		f := fmt.Sprintf("sim: catalog[%d]", i)
		if err := t.validate(f); err != nil {
			return nil, err
		}
		k := t.Key()
		if _, dup := c.byKey[k]; dup {
			return nil, fmt.Errorf("%s.name %q: duplicate", f, t.Name)
		}
		c.byKey[k] = t
		c.names = append(c.names, t.Name)
	}
	return c, nil
}

// Lookup returns the type of a VNF name (see vnf.Normalize).
func (c *Catalog) Lookup(name string) (VNFType, bool) {
	t, ok := c.byKey[vnf.Normalize(name)]
	return t, ok
}

// Names returns the VNF names in catalog order.
func (c *Catalog) Names() []string { return slices.Clone(c.names) }

// Defaults used by DefaultTypes.
const (
	DefaultMemBase     = 20.0 // percent
	DefaultDPTrigger   = 0.9
	DefaultCPTrigger   = 0.7
	DefaultDPBufferSec = 0.02 // 20 ms of service (700 packets for a firewall)
	DefaultCPBufferSec = 0.5  // 500 ms of SIP processing
	CPMsgsPerTx        = 2.0  // request + final response per SIP transaction and proxy
)

// DefaultTypes returns the catalog's Table 2 (vnf.Table2) with the
// simulator's default model: CPU and memory reach their thresholds at
// ρ = 0.7 (CP) or 0.9 (DP), 2 packets per SIP transaction, 500 ms (CP) or
// 20 ms (DP) of buffer.
func DefaultTypes() []VNFType {
	var out []VNFType
	for _, t := range vnf.Table2() {
		out = append(out, DefaultModel(t))
	}
	return out
}

// DefaultModel returns a catalog type with the simulator's default model
// of its plane (see DefaultTypes).
func DefaultModel(t vnf.Type) VNFType {
	st := VNFType{Type: t, MemBase: DefaultMemBase}
	if t.Plane == vnf.ControlPlane {
		st.TriggerUtil, st.PktPerUnit, st.BufferSec = DefaultCPTrigger, CPMsgsPerTx, DefaultCPBufferSec
	} else {
		st.TriggerUtil, st.PktPerUnit, st.BufferSec = DefaultDPTrigger, 1, DefaultDPBufferSec
	}
	return st
}

// DefaultCatalog returns the catalog of DefaultTypes.
func DefaultCatalog() *Catalog {
	c, err := NewCatalog(DefaultTypes()...)
	if err != nil {
		panic(err) // the defaults are valid; a test checks it
	}
	return c
}
