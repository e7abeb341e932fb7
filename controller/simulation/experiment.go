package simulation

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
	"github.com/ims-orch/ims-orch/predictor"
)

// Experiment is one parsed experiment file (see ParseExperiment).
type Experiment struct {
	Name        string
	Description string
	// DCs are the datacenter names (index order), DelaysMs the one-way
	// delay matrix, Changes its scheduled changes.
	DCs      []string
	DelaysMs [][]float64
	Changes  []sim.DelayChange
	// DelayBoundMs is the end-to-end delay bound of the DP planner.
	DelayBoundMs float64
	Interval     time.Duration // scaling interval
	Tau          uint64        // buffer lifetime in intervals
	BootDelay    time.Duration
	Duration     time.Duration
	SCSCFDC      int
	// Min is the minimum working instances per VNF name in every DC that hosts it.
	Min       map[string]int
	Pairing   traffic.Pairing
	Strategy  strategy.Strategy
	Predictor string
	// PaperReactive applies the paper's literal reactive majority rule
	// (running instances only; local.Config.PaperMajority).
	PaperReactive bool
	// TargetUtilization is the policy's planning utilisation (0 = 1).
	TargetUtilization float64
	// DPTargetUtilization is the policy's planning utilisation of the DP
	// stages (fsm.Policy.DPTargetUtilization; 0 = TargetUtilization;
	// strategies with rounds only, system.PolicyFor).
	DPTargetUtilization float64
	// Targets are the policy's per-stage planning targets
	// (fsm.Policy.Targets; strategies with rounds only).
	Targets []fsm.Target
	// WarmStart reports the schedule's starting load during the warm-up, as
	// an operator declaring the expected load would, so the initial round is
	// sized for it.
	WarmStart bool
	// OverloadAtCapacity makes the simulated instances' CPU and memory reach
	// their Table 2 thresholds at the capacity (ρ = 1) instead of at ρ = 0.9
	// (DP) / 0.7 (CP): Table 2's input-packet thresholds equal the capacity
	// (P-CSCF 1000 pkt/s = 500 tx/s × 2 messages, S-CSCF 400, firewall 35000,
	// transcoder 15000), i.e. the thresholds are the stress-test readings of
	// an instance at its capacity (docs/simulator.md).
	OverloadAtCapacity bool
	// ScaleInGuard: a proactive round does not buffer instances the measured
	// load of the VNF in the DC needs (local.Config.ScaleInGuard).
	ScaleInGuard bool
	// LocalFirst: the planner places the entry = exit pairs first
	// (fsm.Policy.LocalFirst, placement.Options.LocalFirst).
	LocalFirst bool
	// PlanHorizon: the forecaster plans for the largest load over the next
	// interval and the boot delay after it (global BankForecaster.SetHorizon
	// with h = ½ + boot delay / interval), not the interval's mean.
	PlanHorizon bool
	// ProfilePrior: the rounds also plan for the rises of the schedule,
	// read as the operator's declared daily profile (global.ProfilePrior;
	// analysis: the run's own expected rates, an upper bound of what a
	// declared profile gives; it replaces Declared).
	ProfilePrior bool
	// Declared is the operator's declared daily profile
	// (global.DailyProfile, indexed like DCs; the daemon's
	// policy.declaredProfile): the rounds plan for its rises
	// (global.ProfilePrior). Nil: none. Its time 0 is the traffic's start.
	Declared *global.DailyProfile
	// DeclaredCall is the declared profile's call duration.
	DeclaredCall time.Duration
	// DeclaredNoise and DeclaredShift make the declared profile a
	// different day's (analysis, "yesterday"): every DC's hourly rate is
	// multiplied by max(0, 1 + DeclaredNoise·N(0,1)), drawn from
	// DeclaredNoiseSeed (nil: from the run's seed, a stream of its own),
	// and the curve runs DeclaredShift hours late (negative: early).
	DeclaredNoise     float64
	DeclaredNoiseSeed *uint64
	DeclaredShift     float64
	// DeclaredLower: the prior also lowers plans on the profile's falls
	// (global.ProfilePrior.Lower).
	DeclaredLower bool
	// DeclaredWeight, DeclaredRampScale, DeclaredMaxWeight and
	// DeclaredWindow set the prior's Weight, RampScale, MaxWeight and Window
	// (analysis; 0: the defaults, not "off" or "flat": declaredFile).
	DeclaredWeight    float64
	DeclaredRampScale float64
	DeclaredMaxWeight float64
	// DeclaredKindWeights and DeclaredFlatWeight: the prior's KindWeights
	// and FlatWeight (analysis).
	DeclaredKindWeights map[string]float64
	DeclaredFlatWeight  bool
	DeclaredWindow      time.Duration
	// DeclaredStageFloor: the prior's StageFloor (analysis; 0: the default,
	// 1: off).
	DeclaredStageFloor float64
	// DeclaredStageFloorMode: the prior's StageFloorMode (analysis).
	DeclaredStageFloorMode string
	// DeclaredStageFloorWindow: the prior's StageFloorWindow (analysis).
	DeclaredStageFloorWindow time.Duration
	// TrimBuffer and BufferSpare give the buffer a cost
	// (local.Config.TrimBuffer): at each new interval, buffered instances
	// beyond BufferSpare per VNF and DC are destroyed once idle instead of
	// waiting τ.
	TrimBuffer  bool
	BufferSpare int
	// TrimEmpty: an emptied buffered instance goes at once
	// (local.Config.TrimEmpty).
	TrimEmpty bool
	// ScaleIn: between-round scale-in (local.Config.ScaleIn).
	ScaleIn bool
	// PackFlows: new DP flows are packed up to this fraction of an
	// instance's capacity (system.Config.PackFlows; 0: least-loaded).
	PackFlows float64
	// SpreadOverload: a new DP flow goes to a less-loaded overloaded
	// instance when the least-loaded normal one would pass this fraction of
	// its capacity (system.Config.SpreadOverload; 0: off).
	SpreadOverload float64
	// Anticipate: hybrid's DP stages scale out before the overload
	// (local.Config.Anticipate).
	Anticipate bool
	// RiseFlags: hybrid's rounds flag DP stages NoRise and Fast
	// (system.Scaling.RiseFlags).
	RiseFlags bool
	// ReactiveUtilization: hybrid's reactive scale-out of a DP stage waits
	// until a majority of its working instances is overloaded and carries
	// this fraction of its capacity (the larger of the packet and the CPU
	// share; for at most one minute: local.Config.ReactiveUtilization; 0:
	// the overload report suffices).
	ReactiveUtilization float64
	// FallingScaleIn: hybrid's local controllers buffer one instance of a
	// DP stage whose load is falling once the rest carry it at this
	// fraction of their capacity (local.Config.FallingScaleIn; 0: off).
	FallingScaleIn float64
	// FallingScaleInSingle: FallingScaleIn also steps a DP stage from two
	// working instances to one that carries at most this fraction of its
	// capacity (local.Config.FallingScaleInSingle; 0: two stay).
	FallingScaleInSingle float64
	// TrimEmptyBusy, TrimEmptySingleBusy: TrimEmpty keeps emptied buffered
	// instances while the working ones average more than this fraction of
	// their load threshold (the single bar with one working instance;
	// local.Config.TrimEmptyBusy, TrimEmptySingleBusy; in (0, 1]).
	TrimEmptyBusy, TrimEmptySingleBusy float64
	// ImproveBudget: the planner's joint improvement phase budget in pair
	// searches (fsm.Policy.ImproveBudget; 0: off).
	ImproveBudget int
	// TransportJitter delays each controller message by up to this much
	// (DCs enter a new interval at different times; 6.3.2).
	TransportJitter time.Duration
	Schedule        *traffic.Schedule
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// file is the YAML form.
type file struct {
	Version         int            `yaml:"version"`
	Name            string         `yaml:"name"`
	Description     string         `yaml:"description"`
	Topology        string         `yaml:"topology"`
	Datacenters     []string       `yaml:"datacenters"`
	DelaysMs        [][]float64    `yaml:"delaysMs"`
	DelayChanges    []fileChange   `yaml:"delayChanges"`
	DelayBoundMs    float64        `yaml:"delayBoundMs"`
	Interval        string         `yaml:"interval"`
	Tau             *int           `yaml:"tau"`
	BootDelay       string         `yaml:"bootDelay"`
	Duration        string         `yaml:"duration"`
	SCSCFDC         *int           `yaml:"scscfDC"`
	Min             map[string]int `yaml:"min"`
	Pairing         string         `yaml:"pairing"`
	Strategy        string         `yaml:"strategy"`
	Predictor       string         `yaml:"predictor"`
	PaperReactive   bool           `yaml:"paperReactive"`
	TargetUtil      *float64       `yaml:"targetUtilization"`
	DPTargetUtil    *float64       `yaml:"dpTargetUtilization"`
	Targets         *[]fsm.Target  `yaml:"targets"`
	WarmStart       *bool          `yaml:"warmStart"`
	OverloadAtCap   bool           `yaml:"overloadAtCapacity"`
	ScaleInGuard    *bool          `yaml:"scaleInGuard"`
	LocalFirst      *bool          `yaml:"localFirst"`
	PlanHorizon     *bool          `yaml:"planHorizon"`
	ProfilePrior    *bool          `yaml:"profilePrior"`
	DeclaredProfile *declaredFile  `yaml:"declaredProfile"`
	TrimBuffer      *bool          `yaml:"trimBuffer"`
	BufferSpare     *int           `yaml:"bufferSpare"`
	TrimEmpty       *bool          `yaml:"trimEmpty"`
	ScaleIn         *bool          `yaml:"scaleIn"`
	PackFlows       *float64       `yaml:"packFlows"`
	SpreadOverload  *float64       `yaml:"spreadOverload"`
	Anticipate      *bool          `yaml:"anticipate"`
	RiseFlags       *bool          `yaml:"riseFlags"`
	ReactiveUtil    *float64       `yaml:"reactiveUtilization"`
	FallingScaleIn  *float64       `yaml:"fallingScaleIn"`
	FallingSingle   *float64       `yaml:"fallingScaleInSingle"`
	TrimEmptyBusy   *float64       `yaml:"trimEmptyBusy"`
	TrimSingleBusy  *float64       `yaml:"trimEmptySingleBusy"`
	ImproveBudget   int            `yaml:"improveBudget"`
	TransportJitter string         `yaml:"transportJitter"`
	Traffic         *traffic.File  `yaml:"traffic"`
}

// declaredFile is an experiment's declaredProfile: the policy's form
// (global.ProfileConfig, dc by name, no files) and the analysis options
// that make it another day's.
type declaredFile struct {
	global.ProfileConfig `yaml:",inline"`
	Noise                float64 `yaml:"noise"`
	NoiseSeed            *uint64 `yaml:"noiseSeed"`
	ShiftHours           float64 `yaml:"shiftHours"`
	Lower                bool    `yaml:"lower"`
	// Weight, RampScale, MaxWeight and Window are the prior's (analysis):
	// global.ProfilePrior's fields of those names. 0 is the default, not
	// "off" or "flat": weight 0 → global.ProfileWeight (½), rampScale 0 →
	// global.ProfileRampScale (−0.2; flat: flatWeight: true), maxWeight 0
	// → 1, window 0 → the plan's window.
	Weight    float64 `yaml:"weight"`
	RampScale float64 `yaml:"rampScale"`
	MaxWeight float64 `yaml:"maxWeight"`
	// KindWeights: global.ProfilePrior.KindWeights (cp, dp).
	KindWeights map[string]float64 `yaml:"kindWeights"`
	// FlatWeight: global.ProfilePrior.FlatWeight (the weight whatever the rise).
	FlatWeight bool          `yaml:"flatWeight"`
	Window     time.Duration `yaml:"window"`
	// stageFloor, stageFloorMode and stageFloorWindow are
	// global.ProfileConfig's (inlined above; a daemon's keys too).
}

type fileChange struct {
	After string  `yaml:"after"`
	From  []int   `yaml:"from"`
	To    []int   `yaml:"to"`
	Ms    float64 `yaml:"ms"`
}

// Topology presets.
const (
	// Paper4DC is the 6.2 SoftLayer topology (Tokyo, Hong Kong, London,
	// Houston) with the delay estimates of testdata/scenarios/paper-4dc.yaml.
	Paper4DC = "paper-4dc"
	// Paper8DC is the 6.3 emulation cluster: 4 groups of 2 DCs, Table 2
	// delays between groups, 5 ms inside.
	Paper8DC = "paper-8dc"
)

// Paper4DCDelays is the one-way delay matrix (ms) of Paper4DC: estimates,
// half of typical RTTs between the four cities.
func Paper4DCDelays() [][]float64 {
	return [][]float64{{0, 25, 115, 70}, {25, 0, 100, 95}, {115, 100, 0, 55}, {70, 95, 55, 0}}
}

// MaxExperimentBytes bounds an experiment file.
const MaxExperimentBytes = 1 << 20

// MaxDuration bounds an experiment's simulated time.
const MaxDuration = 24 * time.Hour

// LoadExperiment reads and parses an experiment file.
func LoadExperiment(path string) (*Experiment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := ParseExperiment(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

func dur(field, s string, def time.Duration, positive bool) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("experiment %s %q: %v", field, s, err)
	}
	if d < 0 || (positive && d == 0) || d > MaxDuration {
		return 0, fmt.Errorf("experiment %s %q: must be in (0, %v]", field, s, MaxDuration)
	}
	return d, nil
}

// ParseExperiment parses an experiment (YAML or JSON). Unknown fields and
// bad values are errors naming the field.
func ParseExperiment(data []byte) (*Experiment, error) {
	if len(data) > MaxExperimentBytes {
		return nil, fmt.Errorf("experiment: %d bytes, at most %d", len(data), MaxExperimentBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("experiment: empty document")
		}
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("experiment version: %d, want 1", f.Version)
	}
	e := &Experiment{Name: strings.TrimSpace(f.Name), Description: f.Description, DelayBoundMs: f.DelayBoundMs, Min: map[string]int{}}
	if e.Name == "" {
		return nil, errors.New("experiment name: required")
	}
	switch f.Topology {
	case Paper4DC:
		e.DCs, e.DelaysMs = []string{"tokyo", "hong-kong", "london", "houston"}, Paper4DCDelays()
	case Paper8DC:
		e.DCs, e.DelaysMs = []string{"dc0", "dc1", "dc2", "dc3", "dc4", "dc5", "dc6", "dc7"}, sim.PaperDelays8()
	case "":
		if len(f.DelaysMs) == 0 {
			return nil, errors.New("experiment topology: give a preset (paper-4dc, paper-8dc) or delaysMs")
		}
		e.DelaysMs = f.DelaysMs
	default:
		return nil, fmt.Errorf("experiment topology %q: must be %q, %q or empty", f.Topology, Paper4DC, Paper8DC)
	}
	if f.Topology != "" && len(f.DelaysMs) > 0 {
		return nil, errors.New("experiment delaysMs: not with a topology preset")
	}
	if len(f.Datacenters) > 0 {
		e.DCs = f.Datacenters
	}
	if len(e.DCs) == 0 {
		e.DCs = make([]string, len(e.DelaysMs))
		for i := range e.DCs {
			e.DCs[i] = fmt.Sprintf("dc%d", i)
		}
	}
	if len(e.DCs) != len(e.DelaysMs) {
		return nil, fmt.Errorf("experiment datacenters: %d names for a %d×%d delay matrix", len(e.DCs), len(e.DelaysMs), len(e.DelaysMs))
	}
	if len(e.DCs) > 64 {
		return nil, fmt.Errorf("experiment datacenters: %d, at most 64", len(e.DCs))
	}
	seen := map[string]bool{}
	for i, n := range e.DCs {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, "/,\n") {
			return nil, fmt.Errorf("experiment datacenters[%d] %q: must be a non-empty name without '/', ',' or newlines", i, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("experiment datacenters[%d] %q: duplicate", i, n)
		}
		seen[n] = true
	}
	for i, c := range f.DelayChanges {
		after, err := dur(fmt.Sprintf("delayChanges[%d].after", i), c.After, 0, false)
		if err != nil {
			return nil, err
		}
		e.Changes = append(e.Changes, sim.DelayChange{After: after, From: c.From, To: c.To, Ms: c.Ms})
	}
	// sim.NewDelays checks the matrix and the changes.
	if _, err := sim.NewDelays(time.Unix(0, 0), e.DelaysMs, e.Changes); err != nil {
		return nil, fmt.Errorf("experiment delays: %w", err)
	}
	if math.IsNaN(e.DelayBoundMs) || math.IsInf(e.DelayBoundMs, 0) || e.DelayBoundMs < 0 {
		return nil, fmt.Errorf("experiment delayBoundMs %g: must be a positive number", e.DelayBoundMs)
	}
	if e.DelayBoundMs == 0 {
		e.DelayBoundMs = 250
	}
	var err error
	if e.Interval, err = dur("interval", f.Interval, 50*time.Second, true); err != nil {
		return nil, err
	}
	if e.Interval < 10*time.Second || e.Interval%time.Second != 0 {
		return nil, fmt.Errorf("experiment interval %v: must be a whole number of seconds ≥ 10s", e.Interval)
	}
	e.Tau = 10
	if f.Tau != nil {
		if *f.Tau < 1 || *f.Tau > 1000 {
			return nil, fmt.Errorf("experiment tau %d: must be in 1..1000 intervals", *f.Tau)
		}
		e.Tau = uint64(*f.Tau)
	}
	if e.BootDelay, err = dur("bootDelay", f.BootDelay, sim.DefaultBootDelay, true); err != nil {
		return nil, err
	}
	if e.Duration, err = dur("duration", f.Duration, 0, true); err != nil {
		return nil, err
	}
	if e.Duration == 0 {
		return nil, errors.New("experiment duration: required")
	}
	if e.Duration%time.Second != 0 {
		return nil, fmt.Errorf("experiment duration %v: must be a whole number of seconds", e.Duration)
	}
	if f.SCSCFDC != nil {
		if *f.SCSCFDC < 0 || *f.SCSCFDC >= len(e.DCs) {
			return nil, fmt.Errorf("experiment scscfDC %d: not a datacenter index (0..%d)", *f.SCSCFDC, len(e.DCs)-1)
		}
		e.SCSCFDC = *f.SCSCFDC
	}
	cat := sim.DefaultCatalog()
	for _, t := range sim.DefaultTypes() {
		e.Min[t.Name] = 1
	}
	for k, v := range f.Min {
		t, ok := cat.Lookup(k)
		if !ok {
			return nil, fmt.Errorf("experiment min[%q]: not a VNF of Table 2 %v", k, cat.Names())
		}
		if v < 0 || v > 100 {
			return nil, fmt.Errorf("experiment min[%q] %d: must be in 0..100", k, v)
		}
		e.Min[t.Name] = v
	}
	e.Pairing = traffic.Pairing(strings.TrimSpace(f.Pairing))
	if e.Pairing == "" {
		e.Pairing = traffic.FirstComeFirstMatch
	}
	if e.Pairing != traffic.FirstComeFirstMatch && e.Pairing != traffic.CrossDC {
		return nil, fmt.Errorf("experiment pairing %q: must be %q or %q", f.Pairing, traffic.FirstComeFirstMatch, traffic.CrossDC)
	}
	if e.Strategy, err = strategy.Parse(strings.TrimSpace(f.Strategy)); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	e.PaperReactive = f.PaperReactive
	e.OverloadAtCapacity = f.OverloadAtCap
	d := system.Defaults // the daemon's too (docs/reproduction.md, "Defaults")
	e.TargetUtilization, e.WarmStart, e.ScaleInGuard, e.LocalFirst = d.TargetUtilization, d.WarmStart, d.ScaleInGuard, d.LocalFirst
	e.PlanHorizon, e.TrimBuffer, e.BufferSpare, e.Predictor = d.PlanHorizon, d.TrimBuffer, d.BufferSpare, d.Predictor
	e.TrimEmpty, e.ScaleIn, e.PackFlows, e.Anticipate, e.DPTargetUtilization = d.TrimEmpty, d.ScaleIn, d.PackFlows, d.Anticipate, d.DPTargetUtilization
	setIf(&e.TargetUtilization, f.TargetUtil)
	setIf(&e.DPTargetUtilization, f.DPTargetUtil)
	e.SpreadOverload = d.SpreadOverload
	e.Targets = slices.Clone(d.Targets)
	if f.Targets != nil {
		e.Targets = slices.Clone(*f.Targets)
		if err := fsm.CheckTargets("targets", e.Targets); err != nil {
			return nil, fmt.Errorf("experiment %w", err)
		}
	}
	setIf(&e.WarmStart, f.WarmStart)
	setIf(&e.ScaleInGuard, f.ScaleInGuard)
	setIf(&e.LocalFirst, f.LocalFirst)
	setIf(&e.PlanHorizon, f.PlanHorizon)
	setIf(&e.ProfilePrior, f.ProfilePrior)
	setIf(&e.TrimBuffer, f.TrimBuffer)
	setIf(&e.BufferSpare, f.BufferSpare)
	setIf(&e.TrimEmpty, f.TrimEmpty)
	setIf(&e.ScaleIn, f.ScaleIn)
	setIf(&e.PackFlows, f.PackFlows)
	setIf(&e.SpreadOverload, f.SpreadOverload)
	setIf(&e.Anticipate, f.Anticipate)
	e.RiseFlags = d.RiseFlags
	setIf(&e.RiseFlags, f.RiseFlags)
	e.ReactiveUtilization = d.ReactiveUtilization
	setIf(&e.ReactiveUtilization, f.ReactiveUtil)
	if err := system.CheckReactiveUtilization("reactiveUtilization", e.ReactiveUtilization); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	e.FallingScaleIn = d.FallingScaleIn
	setIf(&e.FallingScaleIn, f.FallingScaleIn)
	if err := system.CheckFallingScaleIn("fallingScaleIn", e.FallingScaleIn); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	e.FallingScaleInSingle = d.FallingScaleInSingle
	setIf(&e.FallingScaleInSingle, f.FallingSingle)
	if err := system.CheckFallingScaleInSingle("fallingScaleInSingle", e.FallingScaleInSingle); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	e.TrimEmptyBusy, e.TrimEmptySingleBusy = d.TrimEmptyBusy, d.TrimEmptySingleBusy
	setIf(&e.TrimEmptyBusy, f.TrimEmptyBusy)
	setIf(&e.TrimEmptySingleBusy, f.TrimSingleBusy)
	if err := system.CheckTrimEmptyBusy("trimEmptyBusy", e.TrimEmptyBusy); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if err := system.CheckTrimEmptyBusy("trimEmptySingleBusy", e.TrimEmptySingleBusy); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if err := system.CheckPackFlows("packFlows", e.PackFlows); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if err := system.CheckSpreadOverload("spreadOverload", e.SpreadOverload); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if err := system.CheckSpreadNotBelowPack("spreadOverload", e.SpreadOverload, "packFlows", e.PackFlows); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if e.BufferSpare < 0 || e.BufferSpare > 100 {
		return nil, fmt.Errorf("experiment bufferSpare %d: must be in 0..100", e.BufferSpare)
	}
	if f.ImproveBudget < 0 {
		return nil, fmt.Errorf("improveBudget: must not be negative, got %d", f.ImproveBudget)
	}
	e.ImproveBudget = f.ImproveBudget
	if err := fsm.CheckUtilization("targetUtilization", e.TargetUtilization, "1"); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if err := fsm.CheckUtilization("dpTargetUtilization", e.DPTargetUtilization, "targetUtilization"); err != nil {
		return nil, fmt.Errorf("experiment %w", err)
	}
	if p := strings.TrimSpace(f.Predictor); p != "" {
		e.Predictor = p
	}
	if e.Predictor != "" {
		if _, err := predictor.ParseSpec(e.Predictor); err != nil {
			return nil, fmt.Errorf("experiment predictor: %w", err)
		}
	}
	if e.TransportJitter, err = dur("transportJitter", f.TransportJitter, 0, false); err != nil {
		return nil, err
	}
	if e.TransportJitter >= e.Interval/2 {
		return nil, fmt.Errorf("experiment transportJitter %v: must be below half the interval", e.TransportJitter)
	}
	if f.Traffic == nil {
		return nil, errors.New("experiment traffic: required (a traffic schedule)")
	}
	if e.Schedule, err = f.Traffic.Schedule(len(e.DCs)); err != nil {
		return nil, fmt.Errorf("experiment traffic: %w", err)
	}
	if d := f.DeclaredProfile; d != nil {
		const n = "experiment declaredProfile"
		for i, dc := range d.DCs {
			if dc.TimeZone != "" {
				return nil, fmt.Errorf("%s.dcs[%d].timeZone %q: an experiment's time 0 is its start, not a date: give utcOffset", n, i, dc.TimeZone)
			}
		}
		if e.Declared, e.DeclaredCall, err = d.Build(n, e.DCs, nil); err != nil {
			return nil, err
		}
		if !(d.Noise >= 0 && d.Noise <= 1) {
			return nil, fmt.Errorf("%s.noise %v: must be in [0, 1]", n, d.Noise)
		}
		if !(math.Abs(d.ShiftHours) <= 12) {
			return nil, fmt.Errorf("%s.shiftHours %v: must be in [-12, 12]", n, d.ShiftHours)
		}
		e.DeclaredNoise, e.DeclaredNoiseSeed, e.DeclaredShift, e.DeclaredLower = d.Noise, d.NoiseSeed, d.ShiftHours, d.Lower
		e.DeclaredWeight, e.DeclaredRampScale, e.DeclaredMaxWeight, e.DeclaredWindow, e.DeclaredKindWeights = d.Weight, d.RampScale, d.MaxWeight, d.Window, d.KindWeights
		e.DeclaredFlatWeight, e.DeclaredStageFloor, e.DeclaredStageFloorMode, e.DeclaredStageFloorWindow = d.FlatWeight, d.StageFloor, d.StageFloorMode, d.StageFloorWindow
		switch {
		case !(d.Weight >= 0 && d.Weight <= 1):
			return nil, fmt.Errorf("%s.weight %v: must be in [0, 1] (0: global.ProfileWeight)", n, d.Weight)
		case !(d.MaxWeight >= 0 && d.MaxWeight <= 1):
			return nil, fmt.Errorf("%s.maxWeight %v: must be in [0, 1] (0: 1)", n, d.MaxWeight)
		case !global.ValidKindWeights(d.KindWeights):
			return nil, fmt.Errorf("%s.kindWeights %v: kinds %s or %s, weights in [0, 1]", n, d.KindWeights, global.KindCP, global.KindDP)
		case !(math.Abs(d.RampScale) <= global.MaxRampScale):
			return nil, fmt.Errorf("%s.rampScale %v: must be in [-%g, %g] (0: global.ProfileRampScale; flat: flatWeight)", n, d.RampScale, global.MaxRampScale, global.MaxRampScale)
		}
		if d.Window < 0 || d.Window > MaxDuration || (d.Window > 0 && d.Window < time.Second) {
			return nil, fmt.Errorf("%s.window %v: must be 0 (the plan's window) or in [1s, %v]", n, d.Window, MaxDuration)
		}
	}
	return e, nil
}

// WithChangeInterval returns a copy with the schedule's change interval set.
func (e *Experiment) WithChangeInterval(d time.Duration) (*Experiment, error) {
	if d <= 0 || d > MaxDuration {
		return nil, fmt.Errorf("change interval %v: must be in (0, %v]", d, MaxDuration)
	}
	c := e.clone()
	c.Schedule.ChangeInterval = d
	return c, nil
}

// WithStartDelay returns a copy where the first-started DC keeps its start
// and the first-to-second start gap becomes d; the later gaps are kept
// (the asynchronous-start sweep of 6.2.2: Tokyo → Hong Kong delay on the
// x axis, 120 s between the others).
func (e *Experiment) WithStartDelay(d time.Duration) (*Experiment, error) {
	if d < 0 || d > MaxDuration {
		return nil, fmt.Errorf("start delay %v: must be in [0, %v]", d, MaxDuration)
	}
	c := e.clone()
	dcs := c.Schedule.DCs
	if len(dcs) < 2 {
		return nil, errors.New("start delay: the schedule has fewer than two datacenters")
	}
	order := make([]int, len(dcs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return int(dcs[a].Start - dcs[b].Start)
	})
	first, second := dcs[order[0]].Start, dcs[order[1]].Start
	shift := first + d - second
	for _, i := range order[1:] {
		dcs[i].Start += shift
		if dcs[i].Start < 0 {
			dcs[i].Start = 0
		}
	}
	return c, nil
}

// Catalog returns the simulated VNF types of the experiment: Table 2
// (sim.DefaultTypes), with TriggerUtil 1 when OverloadAtCapacity is set.
func (e *Experiment) Catalog() *sim.Catalog {
	types := sim.DefaultTypes()
	if e.OverloadAtCapacity {
		for i := range types {
			types[i].TriggerUtil = 1
		}
	}
	c, err := sim.NewCatalog(types...)
	if err != nil {
		panic(err) // Table 2 with TriggerUtil 1 is valid; a test checks it
	}
	return c
}

func (e *Experiment) clone() *Experiment {
	c := *e
	s := *e.Schedule
	s.DCs = slices.Clone(e.Schedule.DCs)
	for i := range s.DCs {
		s.DCs[i].Rates = slices.Clone(s.DCs[i].Rates)
	}
	c.Schedule = &s
	return &c
}
