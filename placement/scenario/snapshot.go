package scenario

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/placement"
)

// Bounds that keep the planner's integer and float arithmetic exact. No real
// IMS round comes near them; a file that does is almost surely a unit error.
const (
	// MaxInstances bounds instance counts (working, buffered) and the number
	// of instances the predicted workload can need (workload / capacity of
	// the smallest VNF), per entry and in total.
	MaxInstances = 1_000_000
	// MaxDelayMs bounds every delay and the delay bound (1000 s).
	MaxDelayMs = 1e6
)

func fe(field, format string, a ...any) error {
	return &placement.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// names is an ordered set of names with their index.
type names struct {
	list []string
	idx  map[string]int
}

func (ns *names) add(n string) (first int, dup bool) {
	if ns.idx == nil {
		ns.idx = make(map[string]int)
	}
	if i, ok := ns.idx[n]; ok {
		return i, true
	}
	ns.idx[n] = len(ns.list)
	ns.list = append(ns.list, n)
	return 0, false
}

// lookup returns n's index or an error naming field and the known names.
func (ns *names) lookup(field, what, n string) (int, error) {
	if i, ok := ns.idx[n]; ok {
		return i, nil
	}
	known := strings.Join(quoteAll(ns.list), ", ")
	if len(ns.list) > 12 {
		known = strings.Join(quoteAll(ns.list[:12]), ", ") + ", ..."
	}
	return 0, fe(field, "unknown %s %q (known: %s)", what, n, known)
}

func quoteAll(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return q
}

// VNF names and kinds resolved from a scenario.
type vnfKind int

const (
	vnfStage vnfKind = iota
	vnfPCSCF
	vnfSCSCF
)

type vnfRef struct {
	kind  vnfKind
	stage int
}

// CPNames returns the P-CSCF and S-CSCF names used in instances[].vnf and the
// output (controlPlane.*.name or the defaults).
func (sc *Scenario) CPNames() (pcscf, scscf string) {
	pcscf, scscf = sc.ControlPlane.PCSCF.Name, sc.ControlPlane.SCSCF.Name
	if pcscf == "" {
		pcscf = DefaultPCSCFName
	}
	if scscf == "" {
		scscf = DefaultSCSCFName
	}
	return pcscf, scscf
}

// Snapshot checks the scenario's meaning and builds the placement snapshot
// (names become indices in datacenters and dataPlane.stages order). The
// first problem found is returned as a *placement.FieldError naming the
// field in the file, e.g. `workload[3].entry: unknown datacenter "paris"`.
// The returned snapshot passes placement's Snapshot.Validate.
func (sc *Scenario) Snapshot() (*placement.Snapshot, error) {
	if sc.Version != 0 && sc.Version != 1 {
		return nil, fe("version", "unsupported format version %d (this ims-orch reads version 1)", sc.Version)
	}

	// Datacenters.
	if len(sc.Datacenters) == 0 {
		return nil, fe("datacenters", "at least one datacenter is needed")
	}
	var dcs names
	for i, dc := range sc.Datacenters {
		f := fmt.Sprintf("datacenters[%d].name", i)
		if strings.TrimSpace(dc.Name) == "" {
			return nil, fe(f, "must not be empty")
		}
		if first, dup := dcs.add(dc.Name); dup {
			return nil, fe(f, "duplicate datacenter %q (first at datacenters[%d])", dc.Name, first)
		}
	}
	n := len(dcs.list)

	delay, err := sc.delayMatrix(&dcs)
	if err != nil {
		return nil, err
	}
	if !finite(sc.DelayBoundMs) || sc.DelayBoundMs <= 0 {
		return nil, fe("delayBoundMs", "must be a positive number of milliseconds, got %g", sc.DelayBoundMs)
	}
	if sc.DelayBoundMs > MaxDelayMs {
		return nil, fe("delayBoundMs", "%g ms is more than the limit of %g ms", sc.DelayBoundMs, float64(MaxDelayMs))
	}

	// VNFs: DP stages, then the two CP VNFs.
	var vnfs names
	refs := map[string]vnfRef{}
	if len(sc.DataPlane.Stages) == 0 {
		return nil, fe("dataPlane.stages", "the data-plane chain needs at least one stage")
	}
	stages := make([]placement.Stage, len(sc.DataPlane.Stages))
	for i, st := range sc.DataPlane.Stages {
		f := fmt.Sprintf("dataPlane.stages[%d]", i)
		if strings.TrimSpace(st.Name) == "" {
			return nil, fe(f+".name", "must not be empty")
		}
		if first, dup := vnfs.add(st.Name); dup {
			return nil, fe(f+".name", "duplicate stage %q (first at dataPlane.stages[%d])", st.Name, first)
		}
		if !finite(st.Capacity) || st.Capacity <= 0 {
			return nil, fe(f+".capacity", "must be a positive number of packets/s per instance, got %g", st.Capacity)
		}
		refs[st.Name] = vnfRef{kind: vnfStage, stage: i}
		stages[i] = placement.Stage{Name: st.Name, Capacity: st.Capacity}
	}
	pName, sName := sc.CPNames()
	cp := sc.ControlPlane
	for _, c := range []struct {
		f    string
		name string
		v    CPVNF
		kind vnfKind
	}{{"controlPlane.pcscf", pName, cp.PCSCF, vnfPCSCF}, {"controlPlane.scscf", sName, cp.SCSCF, vnfSCSCF}} {
		if strings.TrimSpace(c.name) == "" {
			return nil, fe(c.f+".name", "must not be blank")
		}
		if _, dup := vnfs.add(c.name); dup {
			return nil, fe(c.f+".name", "%q is already the name of another VNF; VNF names must be unique", c.name)
		}
		if !finite(c.v.Capacity) || c.v.Capacity <= 0 {
			return nil, fe(c.f+".capacity", "must be a positive number of SIP transactions/s per instance, got %g", c.v.Capacity)
		}
		if c.v.Min < 0 || c.v.Min > MaxInstances {
			return nil, fe(c.f+".min", "must be between 0 and %d, got %d", MaxInstances, c.v.Min)
		}
		refs[c.name] = vnfRef{kind: c.kind}
	}
	if cp.SCSCFDatacenter == "" {
		return nil, fe("controlPlane.scscfDatacenter", "is required: the datacenter that hosts the S-CSCF (with the HSS)")
	}
	scscfDC, err := dcs.lookup("controlPlane.scscfDatacenter", "datacenter", cp.SCSCFDatacenter)
	if err != nil {
		return nil, err
	}

	excluded, err := sc.drained(&dcs, scscfDC)
	if err != nil {
		return nil, err
	}

	s := &placement.Snapshot{
		N:            n,
		Delay:        delay,
		DelayBound:   sc.DelayBoundMs,
		Stages:       stages,
		DP:           make([][]placement.Provision, n),
		CurrentPaths: map[placement.Pair]placement.Path{},
		DPWorkload:   map[placement.Pair]float64{},
		PCSCF:        placement.CPVNF{Name: pName, Capacity: cp.PCSCF.Capacity, Min: cp.PCSCF.Min},
		SCSCF:        placement.CPVNF{Name: sName, Capacity: cp.SCSCF.Capacity, Min: cp.SCSCF.Min},
		SCSCFDC:      scscfDC,
		PCSCFProv:    make([]placement.Provision, n),
		CPWorkload:   map[placement.Pair]float64{},
		Excluded:     excluded,
	}
	for d := range s.DP {
		s.DP[d] = make([]placement.Provision, len(stages))
	}

	// Instances.
	type dcVNF struct{ dc, vnf int }
	seenInst := map[dcVNF]int{}
	for i, in := range sc.Instances {
		f := fmt.Sprintf("instances[%d]", i)
		d, err := dcs.lookup(f+".datacenter", "datacenter", in.Datacenter)
		if err != nil {
			return nil, err
		}
		vi, err := vnfs.lookup(f+".vnf", "VNF", in.VNF)
		if err != nil {
			return nil, err
		}
		if first, dup := seenInst[dcVNF{d, vi}]; dup {
			return nil, fe(f, "duplicate entry for %s in %q (first at instances[%d])", in.VNF, in.Datacenter, first)
		}
		seenInst[dcVNF{d, vi}] = i
		ref := refs[in.VNF]
		capacity := cp.PCSCF.Capacity
		switch ref.kind {
		case vnfStage:
			capacity = stages[ref.stage].Capacity
		case vnfSCSCF:
			capacity = cp.SCSCF.Capacity
			if d != scscfDC {
				return nil, fe(f+".datacenter", "%s runs only in the S-CSCF datacenter %q (controlPlane.scscfDatacenter), not in %q", sName, cp.SCSCFDatacenter, in.Datacenter)
			}
		}
		if in.Working < 0 || in.Working > MaxInstances {
			return nil, fe(f+".working", "must be between 0 and %d, got %d", MaxInstances, in.Working)
		}
		if in.Buffered < 0 || in.Buffered > MaxInstances {
			return nil, fe(f+".buffered", "must be between 0 and %d, got %d", MaxInstances, in.Buffered)
		}
		if !finite(in.Reserved) || in.Reserved < 0 {
			return nil, fe(f+".reserved", "must be a finite non-negative capacity, got %g", in.Reserved)
		}
		if in.Reserved > float64(in.Working)*capacity+1e-9 {
			return nil, fe(f+".reserved", "%g exceeds the capacity of the %d working instances (%d × %g)", in.Reserved, in.Working, in.Working, capacity)
		}
		if in.Headroom != nil {
			if ref.kind != vnfStage {
				return nil, fe(f+".headroom", "applies to data-plane stages only, not %s", in.VNF)
			}
			if h := *in.Headroom; h < 0 || h > MaxInstances {
				return nil, fe(f+".headroom", "must be between 0 and %d instances, got %d", MaxInstances, h)
			}
			if s.Headroom == nil {
				s.Headroom = make([][]int, n)
				for dd := range s.Headroom {
					s.Headroom[dd] = make([]int, len(stages))
					for k := range s.Headroom[dd] {
						s.Headroom[dd][k] = -1
					}
				}
			}
			s.Headroom[d][ref.stage] = *in.Headroom
		}
		p := placement.Provision{Working: in.Working, Buffered: in.Buffered, Reserved: in.Reserved}
		switch ref.kind {
		case vnfStage:
			s.DP[d][ref.stage] = p
		case vnfPCSCF:
			s.PCSCFProv[d] = p
		case vnfSCSCF:
			s.SCSCFProv = p
		}
	}

	// Current paths.
	m := len(stages)
	seenPath := map[placement.Pair]int{}
	for i, cpth := range sc.Paths {
		f := fmt.Sprintf("paths[%d]", i)
		pr, err := pairOf(&dcs, f, cpth.Entry, cpth.Exit)
		if err != nil {
			return nil, err
		}
		if first, dup := seenPath[pr]; dup {
			return nil, fe(f, "duplicate path for %s→%s (first at paths[%d])", cpth.Entry, cpth.Exit, first)
		}
		seenPath[pr] = i
		if len(cpth.Path) != m+2 {
			return nil, fe(f+".path", "has %d datacenters, want m+2 = %d: the entry, one per stage (%s), the exit (stage count mismatch)", len(cpth.Path), m+2, strings.Join(vnfs.list[:m], ", "))
		}
		path := make(placement.Path, len(cpth.Path))
		for j, name := range cpth.Path {
			if path[j], err = dcs.lookup(fmt.Sprintf("%s.path[%d]", f, j), "datacenter", name); err != nil {
				return nil, err
			}
		}
		if path[0] != pr.Entry {
			return nil, fe(f+".path[0]", "is %q, but a path starts at its entry datacenter %q", cpth.Path[0], cpth.Entry)
		}
		if path[m+1] != pr.Exit {
			return nil, fe(fmt.Sprintf("%s.path[%d]", f, m+1), "is %q, but a path ends at its exit datacenter %q", cpth.Path[m+1], cpth.Exit)
		}
		if !path.LooplessFor(excluded) {
			return nil, fe(f+".path", "has a routing loop: it leaves a datacenter and comes back to it (paper 5.2, restriction 2; only a drained datacenter's own pair may come back to it, as the exit, with every stage elsewhere): %s", strings.Join(cpth.Path, " → "))
		}
		s.CurrentPaths[pr] = path
	}

	// Workload. Bound the instances it can need by the smallest capacity.
	minDP, minCP := stages[0].Capacity, math.Min(cp.PCSCF.Capacity, cp.SCSCF.Capacity)
	for _, st := range stages {
		minDP = math.Min(minDP, st.Capacity)
	}
	var totalDP, totalCP float64
	seenLoad := map[placement.Pair]int{}
	for i, w := range sc.Workload {
		f := fmt.Sprintf("workload[%d]", i)
		pr, err := pairOf(&dcs, f, w.Entry, w.Exit)
		if err != nil {
			return nil, err
		}
		if first, dup := seenLoad[pr]; dup {
			return nil, fe(f, "duplicate pair %s→%s (first at workload[%d])", w.Entry, w.Exit, first)
		}
		seenLoad[pr] = i
		if !finite(w.CP) || w.CP < 0 {
			return nil, fe(f+".cp", "must be a finite non-negative number of SIP transactions/s, got %g", w.CP)
		}
		if !finite(w.DP) || w.DP < 0 {
			return nil, fe(f+".dp", "must be a finite non-negative number of packets/s, got %g", w.DP)
		}
		if w.CP/minCP > MaxInstances {
			return nil, fe(f+".cp", "%g transactions/s would need more than %d instances of a CP VNF (capacity %g)", w.CP, MaxInstances, minCP)
		}
		if w.DP/minDP > MaxInstances {
			return nil, fe(f+".dp", "%g packets/s would need more than %d instances of a DP stage (capacity %g)", w.DP, MaxInstances, minDP)
		}
		totalCP += w.CP
		totalDP += w.DP
		s.CPWorkload[pr] = w.CP
		s.DPWorkload[pr] = w.DP
	}
	if totalCP/minCP > MaxInstances || totalDP/minDP > MaxInstances {
		return nil, fe("workload", "the total workload (%g transactions/s, %g packets/s) would need more than %d instances of one VNF", totalCP, totalDP, MaxInstances)
	}

	if err := s.Validate(); err != nil {
		return nil, renameFields(err, dcs.list)
	}
	return s, nil
}

// drained resolves the drained datacenters into placement's Excluded (nil
// when none is drained).
func (sc *Scenario) drained(dcs *names, scscfDC int) ([]bool, error) {
	if len(sc.Drained) == 0 {
		return nil, nil
	}
	excluded := make([]bool, len(dcs.list))
	first := map[int]int{}
	for i, name := range sc.Drained {
		f := fmt.Sprintf("drained[%d]", i)
		d, err := dcs.lookup(f, "datacenter", name)
		if err != nil {
			return nil, err
		}
		if j, dup := first[d]; dup {
			return nil, fe(f, "datacenter %q is listed twice (first at drained[%d])", name, j)
		}
		first[d] = i
		excluded[d] = true
	}
	if len(first) == len(dcs.list) {
		return nil, fe("drained", "drains all %d datacenters; at least one must stay in service to carry the data plane and the P-CSCF load", len(dcs.list))
	}
	if i, ok := first[scscfDC]; ok {
		return nil, fe(fmt.Sprintf("drained[%d]", i), "%q is the S-CSCF datacenter (controlPlane.scscfDatacenter) and cannot be drained: the S-CSCF and the HSS run only there", sc.Drained[i])
	}
	return excluded, nil
}

func pairOf(dcs *names, f, entry, exit string) (placement.Pair, error) {
	e, err := dcs.lookup(f+".entry", "datacenter", entry)
	if err != nil {
		return placement.Pair{}, err
	}
	x, err := dcs.lookup(f+".exit", "datacenter", exit)
	if err != nil {
		return placement.Pair{}, err
	}
	return placement.Pair{Entry: e, Exit: x}, nil
}

// delayMatrix builds the n×n one-way delay matrix from either form.
func (sc *Scenario) delayMatrix(dcs *names) ([][]float64, error) {
	dl := sc.Delays
	n := len(dcs.list)
	hasMatrix := dl.MatrixMs != nil
	hasGroups := dl.Groups != nil || dl.GroupMatrixMs != nil || dl.IntraGroupMs != nil
	switch {
	case hasMatrix && hasGroups:
		return nil, fe("delays", "give either matrixMs or groups + groupMatrixMs + intraGroupMs, not both")
	case !hasMatrix && !hasGroups:
		return nil, fe("delays", "is required: give matrixMs (n×n, in datacenters order) or groups + groupMatrixMs + intraGroupMs")
	case hasMatrix:
		if err := checkMatrix("delays.matrixMs", dl.MatrixMs, n, "datacenter", "datacenters"); err != nil {
			return nil, err
		}
		out := make([][]float64, n)
		for i := range out {
			out[i] = append([]float64(nil), dl.MatrixMs[i]...)
		}
		return out, nil
	}
	if len(dl.Groups) == 0 {
		return nil, fe("delays.groups", "is required with groupMatrixMs: the group names in matrix order")
	}
	var groups names
	for i, g := range dl.Groups {
		if strings.TrimSpace(g) == "" {
			return nil, fe(fmt.Sprintf("delays.groups[%d]", i), "must not be empty")
		}
		if first, dup := groups.add(g); dup {
			return nil, fe(fmt.Sprintf("delays.groups[%d]", i), "duplicate group %q (first at delays.groups[%d])", g, first)
		}
	}
	if dl.GroupMatrixMs == nil {
		return nil, fe("delays.groupMatrixMs", "is required with groups: the delays between groups, one row per group")
	}
	if err := checkMatrix("delays.groupMatrixMs", dl.GroupMatrixMs, len(groups.list), "group", "delays.groups"); err != nil {
		return nil, err
	}
	if dl.IntraGroupMs == nil {
		return nil, fe("delays.intraGroupMs", "is required with groups: the delay between two datacenters of the same group")
	}
	intra := *dl.IntraGroupMs
	if !finite(intra) || intra < 0 || intra > MaxDelayMs {
		return nil, fe("delays.intraGroupMs", "must be between 0 and %g milliseconds, got %g", float64(MaxDelayMs), intra)
	}
	g := make([]int, n)
	for i, dc := range sc.Datacenters {
		f := fmt.Sprintf("datacenters[%d].group", i)
		if dc.Group == "" {
			return nil, fe(f, "is required when delays are given per group (datacenter %q)", dc.Name)
		}
		var err error
		if g[i], err = groups.lookup(f, "group", dc.Group); err != nil {
			return nil, err
		}
	}
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, n)
		for j := range out[i] {
			switch {
			case i == j:
			case g[i] == g[j]:
				out[i][j] = intra
			default:
				out[i][j] = dl.GroupMatrixMs[g[i]][g[j]]
			}
		}
	}
	return out, nil
}

func checkMatrix(f string, mx [][]float64, n int, what, order string) error {
	if len(mx) != n {
		return fe(f, "has %d rows, want one per %s (%d), in %s order", len(mx), what, n, order)
	}
	for i, row := range mx {
		if len(row) != n {
			return fe(fmt.Sprintf("%s[%d]", f, i), "has %d columns, want %d (the matrix must be square)", len(row), n)
		}
		for j, v := range row {
			fij := fmt.Sprintf("%s[%d][%d]", f, i, j)
			switch {
			case !finite(v):
				return fe(fij, "is not a finite number")
			case v < 0:
				return fe(fij, "must not be negative, got %g ms", v)
			case v > MaxDelayMs:
				return fe(fij, "%g ms is more than the limit of %g ms", v, float64(MaxDelayMs))
			case i == j && v != 0:
				return fe(fij, "is on the diagonal and must be 0, got %g (a %s's delay to itself)", v, what)
			}
		}
	}
	return nil
}

var (
	dcIndexRe = regexp.MustCompile(`\[dc (\d+)\]`)
	pairRe    = regexp.MustCompile(`\[(\d+)→(\d+)\]`)
)

// renameFields rewrites a placement.FieldError from Snapshot.Validate so that
// DC indices read as names. Snapshot checks everything Validate does first,
// so this only matters if Validate grows new checks.
func renameFields(err error, dcNames []string) error {
	var fe *placement.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	name := func(s string) string {
		i, convErr := strconv.Atoi(s)
		if convErr != nil || i < 0 || i >= len(dcNames) {
			return s
		}
		return dcNames[i]
	}
	f := dcIndexRe.ReplaceAllStringFunc(fe.Field, func(m string) string {
		return "[" + name(dcIndexRe.FindStringSubmatch(m)[1]) + "]"
	})
	f = pairRe.ReplaceAllStringFunc(f, func(m string) string {
		sm := pairRe.FindStringSubmatch(m)
		return "[" + name(sm[1]) + "→" + name(sm[2]) + "]"
	})
	return &placement.FieldError{Field: f, Reason: fe.Reason}
}
