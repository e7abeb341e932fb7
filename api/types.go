package api

import (
	"time"

	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Datacenter is one datacenter of the deployment. Group is the delay group of
// the paper's topology (DCs of one group are 5 ms apart); Region and AZ are
// the cloud's names for where the DC's instances run (optional).
type Datacenter struct {
	Name   string `json:"name"`
	Group  string `json:"group"`
	Region string `json:"region,omitempty"`
	AZ     string `json:"az,omitempty"`
	// Discovery is where user agents and P-CSCFs of the DC find the CSCFs
	// (driver local: the DC's discovery DNS server); read-only, ignored in
	// a PUT.
	Discovery *Discovery `json:"discovery,omitempty"`
}

// Discovery is one DC's CSCF discovery: the DNS server that serves its
// zone and the SRV names of its P-CSCFs and S-CSCFs.
type Discovery struct {
	DNSServer string `json:"dnsServer"`
	Zone      string `json:"zone"`
	PCSCFSRV  string `json:"pcscfSRV"`
	SCSCFSRV  string `json:"scscfSRV"`
}

// DatacenterList is the body of GET and PUT /datacenters.
type DatacenterList struct {
	Datacenters []Datacenter `json:"datacenters"`
}

// DelayMatrix is the one-way delay in ms between datacenters:
// DelaysMs[i][j] is the delay from Datacenters[i] to Datacenters[j]. The
// diagonal is 0; the matrix need not be symmetric.
type DelayMatrix struct {
	Datacenters []string    `json:"datacenters"`
	DelaysMs    [][]float64 `json:"delaysMs"`
}

// Planes of a VNF type (the catalog's, placement/vnf).
const (
	PlaneCP = string(vnf.ControlPlane) // control plane (P-CSCF, S-CSCF): capacity in SIP transactions/s
	PlaneDP = string(vnf.DataPlane)    // data plane (firewall, IDS, transcoder): capacity in packets/s
)

// Thresholds are the reactive-scaling overload thresholds of one instance
// (paper 4.4): CPU and memory in percent, input packet rate in packets/s.
// The API uses the catalog's type (JSON cpu, mem, pktRate).
type Thresholds = vnf.Thresholds

// VNFType is one VNF of the catalog (paper Table 2) on the wire. It stays a
// struct of its own because it is the API's form (JSON names, plane as a
// string, image and flavor); NewVNFType and Type convert it from and to the
// catalog's vnf.Type.
type VNFType struct {
	Name       string     `json:"name"`
	Plane      string     `json:"plane"`
	Image      string     `json:"image"`
	Flavor     string     `json:"flavor"`
	Capacity   float64    `json:"capacity"`
	Thresholds Thresholds `json:"thresholds"`
}

// NewVNFType is the wire form of a catalog type with its image and flavor.
func NewVNFType(t vnf.Type, image, flavor string) VNFType {
	return VNFType{Name: t.Name, Plane: string(t.Plane), Image: image, Flavor: flavor, Capacity: t.Capacity, Thresholds: t.Thresholds}
}

// Type is the catalog form of v (image and flavor dropped).
func (v VNFType) Type() vnf.Type {
	return vnf.Type{Name: v.Name, Plane: vnf.Plane(v.Plane), Capacity: v.Capacity, Thresholds: v.Thresholds}
}

// VNFTypeList is the body of GET and PUT /vnf-types.
type VNFTypeList struct {
	VNFTypes []VNFType `json:"vnfTypes"`
}

// Chain is a service chain: the VNF types a flow traverses, in order.
type Chain struct {
	Name   string   `json:"name"`
	Stages []string `json:"stages"`
}

// ChainList is the body of GET and PUT /chains.
type ChainList struct {
	Chains []Chain `json:"chains"`
}

// Limit bounds the working instances of one VNF, in one DC or (DC empty) in
// every DC.
type Limit struct {
	DC  string `json:"dc,omitempty"`
	VNF string `json:"vnf"`
	Min int    `json:"min"`
	Max int    `json:"max"`
}

// Policy is a scaling policy: interval length, τ (intervals an idle instance
// stays buffered), the DP delay bound, the predictor model (a model name such
// as "ar1" or "holt+q90"), the strategy and per-VNF instance limits.
type Policy struct {
	Name            string  `json:"name,omitempty"`
	IntervalSeconds int     `json:"intervalSeconds"`
	Tau             int     `json:"tau"`
	DelayBoundMs    float64 `json:"delayBoundMs"`
	Predictor       string  `json:"predictor"`
	Strategy        string  `json:"strategy"`
	Limits          []Limit `json:"limits,omitempty"`
}

// PolicyList is the body of GET /policies.
type PolicyList struct {
	Policies []Policy `json:"policies"`
}

// Outcomes of a PUT.
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
)

// Change is one changed leaf of a resource: its JSON path (e.g.
// "limits[0].max"), the value before (absent when added) and after (absent
// when removed).
type Change struct {
	Path string `json:"path"`
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// PutResult answers every PUT: whether the resource was created, updated or
// left unchanged (a repeated PUT), and what changed.
type PutResult struct {
	Outcome string   `json:"outcome"`
	Changes []Change `json:"changes"`
}

// DryRunResult answers PUT /policies/{name}?dryRun=true: what would change in
// the policy and what the next round would decide under it. Nothing is
// committed.
type DryRunResult struct {
	DryRun    bool       `json:"dryRun"`
	Changes   []Change   `json:"changes"`
	Decisions []Decision `json:"decisions"`
}

// Instance is one VNF instance as the system sees it. State is the local
// controller's lifecycle state (booting, working, buffered, draining, error,
// ...); Reason says why the instance is in that state (which decision created
// or buffered it).
type Instance struct {
	ID     string    `json:"id"`
	DC     string    `json:"dc"`
	VNF    string    `json:"vnf"`
	State  string    `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Address is where the instance serves when its cloud says (driver
	// local: the Kamailio's SIP address, UDP and TCP, "127.10.1.1:5060").
	Address string `json:"address,omitempty"`
}

// Path is the data-plane service-chain path of one entry→exit pair in the
// current interval: Hops holds one DC per stage; Method says how the
// placement chose it (kept, alg2, alg2-extra, shortest-path-dp, local).
type Path struct {
	Entry   string   `json:"entry"`
	Exit    string   `json:"exit"`
	Hops    []string `json:"hops"`
	DelayMs float64  `json:"delayMs"`
	Method  string   `json:"method"`
}

// Prediction is the workload predicted for one entry→exit pair and plane in
// the current interval, with the measured load when it is known (null while
// the interval runs).
type Prediction struct {
	Entry     string   `json:"entry"`
	Exit      string   `json:"exit"`
	Kind      string   `json:"kind"`
	Predicted float64  `json:"predicted"`
	Actual    *float64 `json:"actual"`
	// Model made the forecast (the policy's predictor; for "auto" the
	// candidate chosen for this pair) and Margin is the "+qNN" quantile
	// margin in Predicted; known on the node whose engine ran the round
	// (empty elsewhere).
	Model  string  `json:"model,omitempty"`
	Margin float64 `json:"margin,omitempty"`
}

// State is the live state: the current interval, the protocol step of the
// round in progress, the leader, the instances, the paths and the
// predictions against actual load.
type State struct {
	Interval int64  `json:"interval"`
	Step     string `json:"step"`
	Leader   string `json:"leader"`
	// CatchingUp says why this node is still catching up with the cluster
	// (empty when it is not): Interval and Paths are then not the cluster's.
	CatchingUp  string       `json:"catchingUp,omitempty"`
	Instances   []Instance   `json:"instances"`
	Paths       []Path       `json:"paths"`
	Predictions []Prediction `json:"predictions"`
	// Delays lists every directed inter-DC link's delay as the last
	// round's plan used it.
	Delays []LinkDelay `json:"delays,omitempty"`
	// Backoffs lists the VNFs whose instances failed in a row soon after
	// their launch (a crash loop) in this node's datacenters, with the
	// replacements held back (local.CrashBackoff).
	Backoffs []Backoff `json:"backoffs,omitempty"`
}

// Backoff is a VNF's crash loop in a datacenter: Failures quick failures
// in a row (instances that failed before they had been up for the
// backoff's reset period); while Until is set, launches of the VNF there
// (the owed replacements among them) wait until then.
type Backoff struct {
	DC       string     `json:"dc"`
	VNF      string     `json:"vnf"`
	Failures int        `json:"failures"`
	Until    *time.Time `json:"until,omitempty"`
	// LastFailure names the last failed instance and why it failed.
	LastFailure string `json:"lastFailure"`
	// Owed is how many replacements are still to be launched.
	Owed int `json:"owed"`
}

// Sources of a link delay.
const (
	DelayMeasured   = "measured"   // probed by the local controllers in the interval just closed
	DelayConfigured = "configured" // never measured: the static matrix
	DelayFallback   = "fallback"   // measured before, no fresh sample: the static matrix
)

// LinkDelay is one directed link's one-way delay with where it came from.
type LinkDelay struct {
	From         string     `json:"from"`
	To           string     `json:"to"`
	Ms           float64    `json:"ms"`
	Source       string     `json:"source"`
	ConfiguredMs float64    `json:"configuredMs"`
	LastSampleMs float64    `json:"lastSampleMs,omitempty"`
	LastSampleAt *time.Time `json:"lastSampleAt,omitempty"`
}

// Decision kinds.
const (
	DecisionProactive   = "proactive"   // a proactive round (paper 4.2)
	DecisionReactive    = "reactive"    // reactive scale-out (paper 4.4)
	DecisionManual      = "manual"      // an operator's scale or drain
	DecisionReplacement = "replacement" // a failed instance replaced
)

// Decision is one scaling decision with its reason: its place in the
// history (Seq), in which round, of what kind, for which VNF in which DC, by
// how many instances (negative: scale in), why (Reason, one line) and the
// evidence (Detail: prediction, path candidates, overloaded instances,
// operation id...). Seq increases with every decision recorded (1, 2, ...);
// it is 0 (absent) on decisions that were not recorded, such as a dry run's.
type Decision struct {
	Seq    int64          `json:"seq,omitempty"`
	Round  int64          `json:"round"`
	At     time.Time      `json:"at"`
	Kind   string         `json:"kind"`
	DC     string         `json:"dc"`
	VNF    string         `json:"vnf"`
	Delta  int            `json:"delta"`
	Reason string         `json:"reason"`
	Detail map[string]any `json:"detail,omitempty"`
}

// DecisionList is the body of GET /decisions: one page of the history,
// oldest first. Next is the cursor of the following page (pass it as
// ?after=): the Seq of the page's last decision, or the cursor given when
// the page is empty. More says that further decisions matched when the page
// was read; a client fetching everything follows Next while More is true,
// and one tailing the history keeps polling with Next.
type DecisionList struct {
	Decisions []Decision `json:"decisions"`
	Next      int64      `json:"next"`
	More      bool       `json:"more"`
}

// Scale types (ETSI GS NFV-SOL 003 ScaleVnfRequest.type).
const (
	ScaleOut = "SCALE_OUT"
	ScaleIn  = "SCALE_IN"
	// ReleaseHold ends the manual hold an earlier scale set (NumberOfSteps 0).
	ReleaseHold = "RELEASE_HOLD"
)

// MaxHold bounds ScaleRequest.HoldFor.
const MaxHold = 30 * 24 * time.Hour

// ScaleRequest asks to scale a VNF in a DC out or in by NumberOfSteps
// instances, in the spirit of SOL003 ScaleVnf. VNF comes from the URL; when
// the body names it too, both must agree.
type ScaleRequest struct {
	DC            string `json:"dc"`
	VNF           string `json:"vnf,omitempty"`
	Type          string `json:"type"`
	NumberOfSteps int    `json:"numberOfSteps"`
	// HoldFor (a Go duration, e.g. "2h") is how long the new count holds
	// against later proactive rounds: a scale-out sets a floor, a scale-in a
	// ceiling. Empty: until a RELEASE_HOLD for the VNF.
	HoldFor string `json:"holdFor,omitempty"`
}

// HoldDuration returns HoldFor parsed (0 when empty); Validate has checked it.
func (s ScaleRequest) HoldDuration() time.Duration {
	d, _ := time.ParseDuration(s.HoldFor)
	return d
}

// DrainRequest asks to drain a datacenter: stop routing new flows into it and
// move its instances out. DC comes from the URL; the body is optional.
type DrainRequest struct {
	DC string `json:"dc,omitempty"`
}

// Operation kinds and states (SOL003 LcmOperationOccurrence, simplified).
const (
	OpScale   = "SCALE"
	OpDrain   = "DRAIN"
	OpUndrain = "UNDRAIN"

	OpStarting   = "STARTING"
	OpProcessing = "PROCESSING"
	OpCompleted  = "COMPLETED"
	OpFailed     = "FAILED"
)

// Operation is a manual operation in progress or done. Scale is set for
// SCALE, Drain for DRAIN and UNDRAIN.
type Operation struct {
	ID         string        `json:"id"`
	Kind       string        `json:"kind"`
	State      string        `json:"state"`
	StartedAt  time.Time     `json:"startedAt"`
	FinishedAt *time.Time    `json:"finishedAt,omitempty"`
	Scale      *ScaleRequest `json:"scale,omitempty"`
	Drain      *DrainRequest `json:"drain,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	// Raft is set in a cluster only (/healthz): RaftMember when the node
	// holds a raft configuration, RaftNone while it waits to be joined.
	Raft string `json:"raft,omitempty"`
}

// Values of Health.Raft.
const (
	RaftMember = "member"
	RaftNone   = "none"
)

// RaftMembership is an optional Backend capability: the node's raft
// membership as /healthz reports it ("" outside a cluster).
type RaftMembership interface {
	RaftMembership() string
}
