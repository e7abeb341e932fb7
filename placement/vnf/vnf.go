// Package vnf owns the VNF catalog: the paper's Table 2 (the five VNF
// types with their planes, per-instance capacities and overload
// thresholds), the aliases operators use for them, and the one VNF name
// normaliser. Every package that needs a Table 2 figure or compares VNF
// names reads it here: the local controller's default thresholds, the
// simulated cloud's catalog, the experiment runner, the traffic engine and
// the API's paper fixture. It is pure data (no I/O), so every ring may
// import it.
package vnf

import (
	"slices"
	"strings"
)

// Plane is the plane a VNF belongs to.
type Plane string

// Planes.
const (
	ControlPlane Plane = "cp" // load in SIP transactions/s
	DataPlane    Plane = "dp" // load in packets/s
)

// Thresholds are the per-instance overload thresholds of one VNF (paper
// Table 2, used by reactive scaling, paper 4.4): a metric is over when its
// value is strictly greater.
type Thresholds struct {
	CPU     float64 `json:"cpu" yaml:"cpu"`         // percent
	Mem     float64 `json:"mem" yaml:"mem"`         // percent
	PktRate float64 `json:"pktRate" yaml:"pktRate"` // input packets/s
}

// Type is one VNF type of the catalog.
type Type struct {
	// Name is the type's name as ims-orch writes it (CSV files, logs);
	// Key() is the form lookups and comparisons use.
	Name  string
	Plane Plane
	// Capacity of one instance: transactions/s (CP) or packets/s (DP).
	Capacity   float64
	Thresholds Thresholds
}

// Key returns the normalised name (Normalize(t.Name)).
func (t Type) Key() string { return Normalize(t.Name) }

// aliases are the other names of Table 2's types (after folding).
var aliases = map[string]string{"fw": "firewall"}

var nameFolder = strings.NewReplacer("-", "", "_", "", " ", "")

// Normalize folds a VNF name for lookups and comparisons: lower case
// without '-', '_' and spaces, with the aliases of Table 2 resolved
// ("P-CSCF", "p_cscf" and "pcscf" are one VNF; "FW" is the firewall).
func Normalize(name string) string {
	n := nameFolder.Replace(strings.ToLower(name))
	if a, ok := aliases[n]; ok {
		return a
	}
	return n
}

// Same reports whether two names denote the same VNF.
func Same(a, b string) bool { return Normalize(a) == Normalize(b) }

// Names of Table 2's types as ims-orch writes them (Normalize folds every
// other spelling to their keys).
const (
	PCSCF      = "P-CSCF"
	SCSCF      = "S-CSCF"
	Firewall   = "firewall"
	IDS        = "ids"
	Transcoder = "transcoder"
)

// table2 is the paper's Table 2: P-CSCF 500 tx/s, S-CSCF 200 tx/s, firewall
// 35000 pkt/s, IDS 20000 pkt/s, transcoder 15000 pkt/s, CPU 70% (CP) or 90%
// (DP), memory 50%, and the input-packet thresholds (note the IDS one is
// 2000 pkt/s in the paper, so that metric is over from ρ ≈ 0.1; overload
// still needs a second metric).
var table2 = []Type{
	{Name: PCSCF, Plane: ControlPlane, Capacity: 500, Thresholds: Thresholds{CPU: 70, Mem: 50, PktRate: 1000}},
	{Name: SCSCF, Plane: ControlPlane, Capacity: 200, Thresholds: Thresholds{CPU: 70, Mem: 50, PktRate: 400}},
	{Name: Firewall, Plane: DataPlane, Capacity: 35000, Thresholds: Thresholds{CPU: 90, Mem: 50, PktRate: 35000}},
	{Name: IDS, Plane: DataPlane, Capacity: 20000, Thresholds: Thresholds{CPU: 90, Mem: 50, PktRate: 2000}},
	{Name: Transcoder, Plane: DataPlane, Capacity: 15000, Thresholds: Thresholds{CPU: 90, Mem: 50, PktRate: 15000}},
}

// Table2 returns the paper's Table 2 in its order (P-CSCF, S-CSCF,
// firewall, IDS, transcoder); the slice is the caller's.
func Table2() []Type { return slices.Clone(table2) }

// Lookup returns the Table 2 type of a VNF name in any spelling Normalize
// accepts.
func Lookup(name string) (Type, bool) {
	k := Normalize(name)
	for _, t := range table2 {
		if t.Key() == k {
			return t, true
		}
	}
	return Type{}, false
}

// DataPlaneChain is the paper's data-plane service chain, in order.
func DataPlaneChain() []string { return []string{Firewall, IDS, Transcoder} }

// Complete returns t with the fields it leaves zero (plane, capacity, the
// thresholds as a whole) taken from the catalog type of its name; a name
// outside the catalog is returned unchanged. Every other struct that
// describes a VNF type (configuration, API, replicated topology) states
// only what differs from Table 2 and is completed here.
func (t Type) Complete() Type {
	c, ok := Lookup(t.Name)
	if !ok {
		return t
	}
	if t.Plane == "" {
		t.Plane = c.Plane
	}
	if t.Capacity == 0 {
		t.Capacity = c.Capacity
	}
	if t.Thresholds == (Thresholds{}) {
		t.Thresholds = c.Thresholds
	}
	return t
}

// DefaultThresholds returns the Table 2 thresholds of a VNF name (any
// spelling Normalize accepts).
func DefaultThresholds(name string) (Thresholds, bool) {
	t, ok := Lookup(name)
	return t.Thresholds, ok
}
