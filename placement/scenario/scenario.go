package scenario

import "github.com/ims-orch/ims-orch/placement/vnf"

// The types below mirror docs/schemas/scenario.schema.json field by field.
// The `json` tag is the field's name in both YAML and JSON files (the decoder
// in decode.go reads it); keep the schema, docs/scenario.md and these tags in
// step.

// Scenario is one decoded scenario file. Its fields use names, not indices;
// Snapshot checks them and builds the placement.Snapshot.
type Scenario struct {
	// Version of the format; 0 (absent) or 1.
	Version int `json:"version,omitempty"`
	// Name and Description are free text, copied to the output.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`

	// Datacenters in index order: the order of delays.matrixMs rows and of
	// the output.
	Datacenters []Datacenter `json:"datacenters"`
	// Delays are the predicted one-way delays between datacenters.
	Delays Delays `json:"delays"`
	// DelayBoundMs is the end-to-end delay bound of a DP path.
	DelayBoundMs float64 `json:"delayBoundMs"`

	ControlPlane ControlPlane `json:"controlPlane"`
	DataPlane    DataPlane    `json:"dataPlane"`

	// Drained names the datacenters an operator is draining (placement's
	// Snapshot.Excluded): no DP stage goes there, their P-CSCF load moves to
	// the nearest datacenter in service and all their instances go to the
	// buffer queue. Not the S-CSCF datacenter, not every datacenter.
	Drained []string `json:"drained,omitempty"`

	// Instances is the current provisioning; a (datacenter, VNF) absent here
	// has no instances.
	Instances []Instance `json:"instances,omitempty"`
	// Paths are the DP service-chain paths of the current interval.
	Paths []CurrentPath `json:"paths,omitempty"`
	// Workload is the predicted workload of the next interval per pair.
	Workload []Workload `json:"workload,omitempty"`
}

// Datacenter is one datacenter. Group is needed only when delays are given
// per group.
type Datacenter struct {
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
}

// Delays holds exactly one of two forms:
//
//   - MatrixMs: a full n×n matrix in datacenters order, row = from, column = to;
//   - Groups + GroupMatrixMs + IntraGroupMs: a matrix between groups (in Groups
//     order) and one delay between two datacenters of the same group, like
//     the paper's 8-DC emulation (Table 2, 5 ms inside a group).
//
// All values are one-way delays in milliseconds; the diagonal is 0.
type Delays struct {
	MatrixMs      [][]float64 `json:"matrixMs,omitempty"`
	Groups        []string    `json:"groups,omitempty"`
	GroupMatrixMs [][]float64 `json:"groupMatrixMs,omitempty"`
	IntraGroupMs  *float64    `json:"intraGroupMs,omitempty"`
}

// ControlPlane is the fixed CP chain: P-CSCF in every datacenter, S-CSCF in
// one datacenter (paper 4.1).
type ControlPlane struct {
	SCSCFDatacenter string `json:"scscfDatacenter"`
	PCSCF           CPVNF  `json:"pcscf"`
	SCSCF           CPVNF  `json:"scscf"`
}

// Default names of the CP VNFs, used in instances[].vnf and the output when
// controlPlane.pcscf.name / controlPlane.scscf.name are not given.
const (
	DefaultPCSCFName = vnf.PCSCF
	DefaultSCSCFName = vnf.SCSCF
)

// CPVNF is one CP VNF: per-instance capacity in SIP transactions/s and the
// minimum number of working instances kept where it runs.
type CPVNF struct {
	Name     string  `json:"name,omitempty"`
	Capacity float64 `json:"capacity"`
	Min      int     `json:"min,omitempty"`
}

// DataPlane is the DP chain, stages in chain order.
type DataPlane struct {
	Stages []Stage `json:"stages"`
}

// Stage is one DP VNF with the capacity of one instance in packets/s.
type Stage struct {
	Name     string  `json:"name"`
	Capacity float64 `json:"capacity"`
}

// Instance is the current provisioning of one VNF in one datacenter.
type Instance struct {
	Datacenter string  `json:"datacenter"`
	VNF        string  `json:"vnf"`
	Working    int     `json:"working,omitempty"`
	Buffered   int     `json:"buffered,omitempty"`
	Reserved   float64 `json:"reserved,omitempty"`
	// Headroom (DP VNFs only) is how many instances the VNF may still add in
	// the datacenter this round, reused or created: the caller folds the
	// policy's max and the cloud's last reported quota into it (placement's
	// Snapshot.Headroom). Absent: no limit.
	Headroom *int `json:"headroom,omitempty"`
}

// CurrentPath is the current DP path of one entry→exit pair: m+2 datacenter
// names (entry, the DC of each stage, exit).
type CurrentPath struct {
	Entry string   `json:"entry"`
	Exit  string   `json:"exit"`
	Path  []string `json:"path"`
}

// Workload is the predicted next-interval workload of one entry→exit pair:
// CP in SIP transactions/s, DP in packets/s.
type Workload struct {
	Entry string  `json:"entry"`
	Exit  string  `json:"exit"`
	CP    float64 `json:"cp,omitempty"`
	DP    float64 `json:"dp,omitempty"`
}
