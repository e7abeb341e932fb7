package api

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// Limits on resource sizes and values. They bound what one request can ask
// for; the body limit bounds its bytes.
const (
	MaxDatacenters    = 256
	MaxVNFTypes       = 256
	MaxChains         = 256
	MaxStages         = routing.MaxStages // the flow tag's bit layout (controller/routing)
	MaxLimits         = 4096
	MaxDelayMs        = 60_000
	MaxIntervalSecond = 86_400
	MaxTau            = 10_000
	MaxScaleSteps     = 1000
	MaxDecisionsLimit = 1000
	// MaxInstanceLimit bounds a limit's min and max: the sanity limit of
	// working instances of one VNF in one DC (controller/instbound.Sanity;
	// the daemon also checks the lower bound of a data-plane stage, 256 − the
	// number of DCs, which its routing table can address).
	MaxInstanceLimit = 10_000
)

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	predictorRE = regexp.MustCompile(`^[a-z][a-z0-9:=,.+_-]{0,127}$`)
)

const nameRule = "must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"

// checkName validates a resource name.
func checkName(v *ValidationError, field, name string) {
	switch {
	case name == "":
		v.Add(field, "is required")
	case !nameRE.MatchString(name):
		v.Add(field, "%q %s", truncate(name), nameRule)
	}
}

// checkList records the list-level problems of a required list field of n
// entries (nil: absent); it returns false when the entries must not be
// checked one by one (more than max).
func checkList(v *ValidationError, field string, absent bool, n, max int) bool {
	if absent {
		v.Add(field, "is required")
	}
	if n > max {
		v.Add(field, "has %d entries, at most %d allowed", n, max)
		return false
	}
	return true
}

// uniqueNames checks names of one list: each valid (checkName) and none
// repeating an earlier one. list names the list in the errors ("chains"),
// field(i) the name's field of entry i.
type uniqueNames struct {
	v     *ValidationError
	list  string
	field func(i int) string
	seen  map[string]int
}

func newUniqueNames(v *ValidationError, list string, field func(i int) string) *uniqueNames {
	return &uniqueNames{v: v, list: list, field: field, seen: map[string]int{}}
}

func (u *uniqueNames) check(i int, name string) {
	f := u.field(i)
	checkName(u.v, f, name)
	if j, dup := u.seen[name]; dup && name != "" {
		u.v.Add(f, "%q repeats %s[%d]", name, u.list, j)
	}
	u.seen[name] = i
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// quoted returns the names quoted and comma-separated.
func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate checks a datacenter list: names valid and unique, group required.
func (l DatacenterList) Validate() error {
	v := &ValidationError{}
	if !checkList(v, "datacenters", l.Datacenters == nil, len(l.Datacenters), MaxDatacenters) {
		return v
	}
	names := newUniqueNames(v, "datacenters", func(i int) string { return fmt.Sprintf("datacenters[%d].name", i) })
	for i, d := range l.Datacenters {
		f := fmt.Sprintf("datacenters[%d]", i)
		names.check(i, d.Name)
		checkName(v, f+".group", d.Group)
		if d.Region != "" && !nameRE.MatchString(d.Region) {
			v.Add(f+".region", "%q %s", truncate(d.Region), nameRule)
		}
		if d.AZ != "" && !nameRE.MatchString(d.AZ) {
			v.Add(f+".az", "%q %s", truncate(d.AZ), nameRule)
		}
	}
	return v.Err()
}

// Validate checks a delay matrix: unique DC names, a square matrix of their
// size, finite non-negative delays up to MaxDelayMs, a zero diagonal.
func (m DelayMatrix) Validate() error {
	v := &ValidationError{}
	n := len(m.Datacenters)
	if n == 0 {
		v.Add("datacenters", "is required and must not be empty")
	}
	if n > MaxDatacenters {
		v.Add("datacenters", "has %d entries, at most %d allowed", n, MaxDatacenters)
		return v
	}
	names := newUniqueNames(v, "datacenters", func(i int) string { return fmt.Sprintf("datacenters[%d]", i) })
	for i, d := range m.Datacenters {
		names.check(i, d)
	}
	if len(m.DelaysMs) != n {
		v.Add("delaysMs", "has %d rows, want one per datacenter (%d)", len(m.DelaysMs), n)
		return v.Err()
	}
	for i, row := range m.DelaysMs {
		if len(row) != n {
			v.Add(fmt.Sprintf("delaysMs[%d]", i), "has %d columns, want %d", len(row), n)
			continue
		}
		for j, d := range row {
			f := fmt.Sprintf("delaysMs[%d][%d]", i, j)
			switch {
			case !finite(d) || d < 0 || d > MaxDelayMs:
				v.Add(f, "%g must be between 0 and %d ms", d, MaxDelayMs)
			case i == j && d != 0:
				v.Add(f, "the delay of a datacenter to itself must be 0, got %g", d)
			}
		}
	}
	return v.Err()
}

// Validate checks a VNF type list.
func (l VNFTypeList) Validate() error {
	v := &ValidationError{}
	if !checkList(v, "vnfTypes", l.VNFTypes == nil, len(l.VNFTypes), MaxVNFTypes) {
		return v
	}
	names := newUniqueNames(v, "vnfTypes", func(i int) string { return fmt.Sprintf("vnfTypes[%d].name", i) })
	for i, t := range l.VNFTypes {
		f := fmt.Sprintf("vnfTypes[%d]", i)
		names.check(i, t.Name)
		if t.Plane != PlaneCP && t.Plane != PlaneDP {
			v.Add(f+".plane", "%q must be %q or %q", truncate(t.Plane), PlaneCP, PlaneDP)
		}
		if t.Image == "" {
			v.Add(f+".image", "is required")
		} else if len(t.Image) > 255 {
			v.Add(f+".image", "is longer than 255 characters")
		}
		if t.Flavor == "" {
			v.Add(f+".flavor", "is required")
		} else if len(t.Flavor) > 255 {
			v.Add(f+".flavor", "is longer than 255 characters")
		}
		if !finite(t.Capacity) || t.Capacity <= 0 {
			v.Add(f+".capacity", "%g must be > 0 (transactions/s for cp, packets/s for dp)", t.Capacity)
		}
		pct := func(name string, x float64) {
			if !finite(x) || x <= 0 || x > 100 {
				v.Add(f+".thresholds."+name, "%g must be a percentage in (0, 100]", x)
			}
		}
		pct("cpu", t.Thresholds.CPU)
		pct("mem", t.Thresholds.Mem)
		if !finite(t.Thresholds.PktRate) || t.Thresholds.PktRate <= 0 {
			v.Add(f+".thresholds.pktRate", "%g must be > 0 packets/s", t.Thresholds.PktRate)
		}
	}
	return v.Err()
}

// Validate checks a chain list: names valid and unique, 1..MaxStages stages
// per chain, each a valid VNF type name appearing once.
func (l ChainList) Validate() error {
	v := &ValidationError{}
	if !checkList(v, "chains", l.Chains == nil, len(l.Chains), MaxChains) {
		return v
	}
	names := newUniqueNames(v, "chains", func(i int) string { return fmt.Sprintf("chains[%d].name", i) })
	for i, c := range l.Chains {
		f := fmt.Sprintf("chains[%d]", i)
		names.check(i, c.Name)
		if len(c.Stages) == 0 || len(c.Stages) > MaxStages {
			v.Add(f+".stages", "has %d stages, want 1 to %d (the data plane's flow tag encodes at most %d stages)",
				len(c.Stages), MaxStages, MaxStages)
			continue
		}
		stages := newUniqueNames(v, "stages", func(k int) string { return fmt.Sprintf("%s.stages[%d]", f, k) })
		for k, s := range c.Stages {
			stages.check(k, s)
		}
	}
	return v.Err()
}

// Validate checks a policy's fields (references to DCs and VNF types are the
// Backend's to check).
func (p Policy) Validate() error {
	v := &ValidationError{}
	checkName(v, "name", p.Name)
	if p.IntervalSeconds < 1 || p.IntervalSeconds > MaxIntervalSecond {
		v.Add("intervalSeconds", "%d must be between 1 and %d", p.IntervalSeconds, MaxIntervalSecond)
	}
	if p.Tau < 1 || p.Tau > MaxTau {
		v.Add("tau", "%d must be between 1 and %d intervals", p.Tau, MaxTau)
	}
	if !finite(p.DelayBoundMs) || p.DelayBoundMs <= 0 || p.DelayBoundMs > MaxDelayMs {
		v.Add("delayBoundMs", "%g must be > 0 and at most %d ms", p.DelayBoundMs, MaxDelayMs)
	}
	switch {
	case p.Predictor == "":
		v.Add("predictor", "is required (a model name such as \"ar1\" or \"holt+q90\")")
	case !predictorRE.MatchString(p.Predictor):
		v.Add("predictor", "%q is not a model spec: up to 128 characters of a-z, 0-9 and :=,.+_- starting with a letter, e.g. \"holt+q90\" or \"ar1:w=20\"", truncate(p.Predictor))
	}
	if _, err := strategy.Parse(p.Strategy); err != nil || p.Strategy == "" {
		v.Add("strategy", "%q must be one of %s (controller/strategy)", truncate(p.Strategy), quoted(strategy.Names()))
	}
	if len(p.Limits) > MaxLimits {
		v.Add("limits", "has %d entries, at most %d allowed", len(p.Limits), MaxLimits)
		return v
	}
	type key struct{ dc, vnf string }
	seen := map[key]int{}
	for i, l := range p.Limits {
		f := fmt.Sprintf("limits[%d]", i)
		if l.DC != "" {
			checkName(v, f+".dc", l.DC)
		}
		checkName(v, f+".vnf", l.VNF)
		if j, dup := seen[key{l.DC, l.VNF}]; dup {
			v.Add(f, "repeats limits[%d] (same dc and vnf)", j)
		}
		seen[key{l.DC, l.VNF}] = i
		if l.Min < 0 || l.Min > MaxInstanceLimit {
			v.Add(f+".min", "%d must be between 0 and %d (the sanity limit of instances per datacenter)", l.Min, MaxInstanceLimit)
		}
		if l.Max < 1 || l.Max < l.Min || l.Max > MaxInstanceLimit {
			v.Add(f+".max", "%d must be ≥ 1, ≥ min (%d) and at most %d (the sanity limit of instances per datacenter)", l.Max, l.Min, MaxInstanceLimit)
		}
	}
	return v.Err()
}

// Validate checks a scale request (VNF already merged from the URL).
func (s ScaleRequest) Validate() error {
	v := &ValidationError{}
	checkName(v, "dc", s.DC)
	checkName(v, "vnf", s.VNF)
	if s.Type != ScaleOut && s.Type != ScaleIn {
		v.Add("type", "%q must be %q or %q", truncate(s.Type), ScaleOut, ScaleIn)
	}
	if s.NumberOfSteps < 1 || s.NumberOfSteps > MaxScaleSteps {
		v.Add("numberOfSteps", "%d must be between 1 and %d", s.NumberOfSteps, MaxScaleSteps)
	}
	return v.Err()
}

// Validate checks a drain request (DC already merged from the URL).
func (d DrainRequest) Validate() error {
	v := &ValidationError{}
	checkName(v, "dc", d.DC)
	return v.Err()
}
