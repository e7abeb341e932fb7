// Package protocol owns the messages of the ScalIMS interval protocol between
// the global controller and the local controllers (paper Fig. 3) and the
// periodic workload reports. It holds types only; transports live beside the
// controllers that use them.
//
// A round ending interval t runs five steps:
//
//	1 predict          (global only)
//	2 acquire          global → every local: AcquireProvision; local stops reactive scaling, answers ProvisionReport
//	3 compute          (global only, placement.Plan)
//	4 broadcast        global → every local: ApplyDecision; local scales out/in, stores next paths, answers Applied
//	5 enter interval   global → every local: EnterInterval; local switches path sets, expires buffers, resumes reactive scaling, answers Entered
//
// Each request carries (Round, Step, Seq); a request unanswered after 500 ms
// is sent again with the same header, so a receiver must treat a repeated
// header as a duplicate and answer it again without acting twice.
package protocol

import (
	"slices"
	"time"
)

// Step numbers follow Fig. 3 of the paper.
type Step uint8

// The protocol steps.
const (
	StepPredict   Step = 1
	StepAcquire   Step = 2
	StepCompute   Step = 3
	StepBroadcast Step = 4
	StepEnter     Step = 5
)

func (s Step) String() string {
	switch s {
	case StepPredict:
		return "predict"
	case StepAcquire:
		return "acquire"
	case StepCompute:
		return "compute"
	case StepBroadcast:
		return "broadcast"
	case StepEnter:
		return "enter"
	}
	return "unknown"
}

// RetransmitAfter is the paper's re-send timer.
const RetransmitAfter = 500 * time.Millisecond

// Header identifies a request; its response echoes it.
type Header struct {
	// Round is the interval index t being closed; the decision applies to t+1.
	Round uint64 `json:"round"`
	Step  Step   `json:"step"`
	// Seq is unique per (Round, Step, DC) request; re-sends reuse it.
	Seq uint64 `json:"seq"`
	// DC is the local controller's datacenter name.
	DC string `json:"dc"`
}

// VNFProvision is one VNF's provisioning in one datacenter.
type VNFProvision struct {
	VNF        string `json:"vnf"`
	Working    int    `json:"working"`    // normal + overload
	Overloaded int    `json:"overloaded"` // of Working
	Booting    int    `json:"booting"`    // launched, not yet active (counted as working by the plan)
	Buffered   int    `json:"buffered"`
	// ReservedCapacity is capacity of working instances used by traffic the
	// plan does not place (0 in the paper).
	ReservedCapacity float64 `json:"reservedCapacity,omitempty"`
	// QuotaLeft is how many more instances of the VNF the cloud's quota
	// allows in the datacenter, as the driver told the local controller at
	// this acquire (drivers.QuotaReporter): absent when unknown (the
	// driver cannot tell, or asking it failed), negative when the cloud sets
	// no limit. The global controller keeps the last reported value and the
	// planner routes around a DC whose quota leaves a VNF no room to grow.
	QuotaLeft *int `json:"quotaLeft,omitempty"`
}

// ProvisionReport answers step 2.
type ProvisionReport struct {
	DC   string         `json:"dc"`
	VNFs []VNFProvision `json:"vnfs"`
	// Features are the optional decision fields this local controller
	// understands (FeatureKeepBuffered, FeatureNoRise). The global sends such a field
	// only to a DC that advertised it: a local controller decodes requests
	// strictly (unknown fields → HTTP 400), so an older one would refuse
	// the whole decision. An older global ignores this field (responses
	// are decoded leniently).
	Features []string `json:"features,omitempty"`
}

// FeatureKeepBuffered: the local controller honours VNFTarget.KeepBuffered.
const FeatureKeepBuffered = "keepBuffered"

// FeatureNoRise: the local controller honours VNFTarget.NoRise and
// VNFTarget.Fast. A local controller advertises it only while it scales
// reactively (the flags tune its reactive rules and its launches between
// rounds), so the global sends them in the hybrid strategy only.
const FeatureNoRise = "noRise"

// Has reports whether the report advertises feature f.
func (r ProvisionReport) Has(f string) bool { return slices.Contains(r.Features, f) }

// VNFTarget is what the plan wants of one VNF in one datacenter next interval.
type VNFTarget struct {
	VNF      string `json:"vnf"`
	Working  int    `json:"working"`  // target working count
	Reuse    int    `json:"reuse"`    // take this many from the buffer tail
	Create   int    `json:"create"`   // launch this many
	ToBuffer int    `json:"toBuffer"` // move this many working instances to the buffer tail
	Reason   string `json:"reason"`   // why (prediction, pairs served), for explainability
	// KeepBuffered asks the DC to keep at least this many of the VNF's
	// buffered instances until the interval ends (its trims and the
	// buffer's expiry leave them): the global stage floor's hold, for a
	// rise the working count does not cover (0: none). Sent only to a DC
	// whose step-2 report advertises FeatureKeepBuffered: an older local
	// controller refuses a request with this field (strict decoding).
	KeepBuffered int `json:"keepBuffered,omitempty"`
	// NoRise says the round foresees no rise of the VNF's load here: its
	// plan and the measured load have stayed flat for a few rounds after
	// a steep rise, and no declared profile foresees one. The local
	// controller then holds an overload below its utilisation bar longer,
	// counts its scale-in guard at a fuller instance and skips anticipated
	// scale-out on a few working instances (local.NoRiseConfig). Sent only
	// to a DC that advertises FeatureNoRise (strict decoding, as
	// KeepBuffered).
	NoRise bool `json:"noRise,omitempty"`
	// Fast says the VNF's load here has just risen steeply and no declared
	// profile foresees a larger rise: the local controller launches the
	// part of a raise that the measured load, projected at its rise over
	// one boot, does not need yet tick by tick as the projection reaches
	// it (a just-in-time launch). Sent only to a DC that advertises
	// FeatureNoRise.
	Fast bool `json:"fast,omitempty"`
}

// PathEntry is the service-chain path of one entry→exit pair, as DC names:
// entry, stage 1..m, exit.
type PathEntry struct {
	Entry string   `json:"entry"`
	Exit  string   `json:"exit"`
	Hops  []string `json:"hops"`
}

// DCDecision is step 4's payload for one datacenter.
type DCDecision struct {
	DC string `json:"dc"`
	// Interval is the interval the decision applies to (Round+1).
	Interval uint64      `json:"interval"`
	Targets  []VNFTarget `json:"targets"`
	// Paths is the full path set of the next interval (every pair; a DC routes
	// flows of any pair that crosses it).
	Paths []PathEntry `json:"paths"`
	// Drain is set while an operator drains this DC: the plan places no DP
	// stage and no P-CSCF load here, so the local controller must not scale
	// out reactively; its instances go to the buffer and expire after τ.
	Drain bool `json:"drain,omitempty"`
	// Limits are the policy's instance limits for this DC (per-DC limits
	// override the ones for every DC), applied by the local controller from
	// this interval on; a VNF they do not name keeps the limits the local
	// controller was configured with.
	Limits []VNFLimit `json:"limits,omitempty"`
}

// VNFLimit bounds the working instances of one VNF in one DC (Max 0 = no
// upper bound).
type VNFLimit struct {
	VNF string `json:"vnf"`
	Min int    `json:"min"`
	Max int    `json:"max"`
}

// Request is any global → local request.
type Request struct {
	Header
	Decision *DCDecision `json:"decision,omitempty"` // StepBroadcast only
	// Expires is when the global controller gives the DC up for this step
	// (its step deadline); a local controller drops an acquire or a
	// broadcast that reaches it later (queued while it was stopped): the
	// round has moved on without it. Zero: no expiry.
	Expires time.Time `json:"expires,omitzero"`
}

// Response is any local → global answer.
type Response struct {
	Header
	Provision *ProvisionReport `json:"provision,omitempty"` // StepAcquire only
	// Created and Reused report what step 4 actually did (may fall short of
	// the target on quota or capacity errors; Error then says why).
	Created int    `json:"created,omitempty"`
	Reused  int    `json:"reused,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PairLoad is a workload measurement for one entry→exit pair.
type PairLoad struct {
	Entry string  `json:"entry"`
	Exit  string  `json:"exit"`
	Rate  float64 `json:"rate"` // CP: SIP transactions/s; DP: packets/s
}

// WorkloadReport is a local controller's periodic report: CP every 5 s,
// DP and delays every second (paper 4.2 step 1, 5).
type WorkloadReport struct {
	DC string    `json:"dc"`
	At time.Time `json:"at"`
	// Kind is "cp" or "dp".
	Kind  string     `json:"kind"`
	Pairs []PairLoad `json:"pairs"`
	// DelaysMs maps another DC's name to the measured one-way delay (DP only).
	DelaysMs map[string]float64 `json:"delaysMs,omitempty"`
	// Reporter identifies the process that measured the report (a daemon
	// node's ID; empty: an in-process source or an older reporter). The
	// global intake keeps each reporter's last reports of a DC apart, so
	// the reports of two reporters of one DC, interleaved, each keep their
	// own times (the recent slope).
	Reporter string `json:"reporter,omitempty"`
	// AgeMs is how old the measurement was when it was sent, in ms on the
	// reporter's own clock (its clock now − At; 0 or absent: unknown). The
	// global controller dates the measurement on its own clock by it
	// (arrival − age), without trusting the reporter's clock, and so
	// recognises a report of an interval it has already closed (a re-sent
	// one that reached a new leader late).
	AgeMs float64 `json:"ageMs,omitempty"`
	// CountedBy, on a re-sent copy only (session 15), is the word of the
	// round engine that closed an interval: it counted this report in
	// another, later one (its answer then). A leader that counted the
	// report in an intake it dropped because that engine's close of the
	// interval before was committed, not its own, counts the copy again
	// when the word is the closing engine's and names the interval it
	// measures (controller/global, "Leadership and resuming"). A global
	// node of session 14 or older refuses the field (strict decoding): the
	// reporter leaves it out for it.
	CountedBy *CountedBy `json:"countedBy,omitempty"`
	// Credential is what the report was delivered under, set by the node
	// that receives it and never sent or read on the wire: "" in-process
	// (a local controller of the global node's own process), the workload
	// handler's SharedCredential for the shared protocol token, a
	// reporter credential's name (role.reportersFile). The global intake
	// bounds the reporters of one DC per credential, so the holder of one
	// credential cannot take the rings of another's reporters.
	Credential string `json:"-"`
}

// CountedBy is what a round engine said of a workload report it counted:
// its ID (the "engine" of its answer) and the interval it counted the
// report in.
type CountedBy struct {
	Engine   string `json:"engine"`
	Interval uint64 `json:"interval"`
}
