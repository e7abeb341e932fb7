package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// DelayChange sets the one-way delay between every DC of From and every DC
// of To (both ways) to Ms from After (measured from the experiment start) on.
type DelayChange struct {
	After time.Duration
	From  []int
	To    []int
	Ms    float64
}

// Delays is an inter-datacenter one-way delay matrix (ms) with scheduled
// changes. It is immutable after NewDelays and safe for concurrent use.
type Delays struct {
	start time.Time
	n     int
	// epochs[k] is the matrix in force from offsets[k] on.
	offsets []time.Duration
	epochs  [][][]float64
}

// NewDelays validates base (n×n, zero diagonal, finite values ≥ 0) and the
// changes, and returns the delay schedule of an experiment starting at start.
func NewDelays(start time.Time, base [][]float64, changes []DelayChange) (*Delays, error) {
	n := len(base)
	if n == 0 {
		return nil, fmt.Errorf("sim: delays: the matrix is empty")
	}
	m := make([][]float64, n)
	for i, row := range base {
		if len(row) != n {
			return nil, fmt.Errorf("sim: delays[%d]: %d columns, want %d", i, len(row), n)
		}
		for j, x := range row {
			if !(x >= 0) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("sim: delays[%d][%d] %v: must be a finite number ≥ 0", i, j, x)
			}
			if i == j && x != 0 {
				return nil, fmt.Errorf("sim: delays[%d][%d] %v: the diagonal must be 0", i, j, x)
			}
		}
		m[i] = slices.Clone(row)
	}
	cs := slices.Clone(changes)
	for k, ch := range cs {
		f := fmt.Sprintf("sim: delay change[%d]", k)
		if ch.After < 0 {
			return nil, fmt.Errorf("%s.after %v: must not be negative", f, ch.After)
		}
		if !(ch.Ms >= 0) || math.IsInf(ch.Ms, 0) {
			return nil, fmt.Errorf("%s.ms %v: must be a finite number ≥ 0", f, ch.Ms)
		}
		if len(ch.From) == 0 || len(ch.To) == 0 {
			return nil, fmt.Errorf("%s: from and to: must name at least one datacenter each", f)
		}
		for _, x := range append(slices.Clone(ch.From), ch.To...) {
			if x < 0 || x >= n {
				return nil, fmt.Errorf("%s: datacenter %d: not in 0..%d", f, x, n-1)
			}
		}
		for _, a := range ch.From {
			if slices.Contains(ch.To, a) {
				return nil, fmt.Errorf("%s: datacenter %d is in both from and to", f, a)
			}
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].After < cs[b].After })
	d := &Delays{start: start, n: n, offsets: []time.Duration{math.MinInt64}, epochs: [][][]float64{m}}
	for _, ch := range cs {
		cur := d.epochs[len(d.epochs)-1]
		if d.offsets[len(d.offsets)-1] != ch.After {
			next := make([][]float64, n)
			for i := range cur {
				next[i] = slices.Clone(cur[i])
			}
			d.offsets = append(d.offsets, ch.After)
			d.epochs = append(d.epochs, next)
			cur = next
		}
		for _, a := range ch.From {
			for _, b := range ch.To {
				cur[a][b], cur[b][a] = ch.Ms, ch.Ms
			}
		}
	}
	return d, nil
}

// N returns the number of datacenters.
func (d *Delays) N() int { return d.n }

// Start returns the experiment start the change offsets count from.
func (d *Delays) Start() time.Time { return d.start }

// Matrix returns the matrix in force at at. The caller must not modify it.
func (d *Delays) Matrix(at time.Time) [][]float64 {
	off := at.Sub(d.start)
	k := sort.Search(len(d.offsets), func(k int) bool { return d.offsets[k] > off }) - 1
	return d.epochs[max(k, 0)]
}

// Delay returns the one-way delay in ms from DC i to DC j at at.
func (d *Delays) Delay(i, j int, at time.Time) float64 { return d.Matrix(at)[i][j] }

// GroupMatrix expands a group delay matrix: DCs a and b of groups ga ≠ gb
// are group[ga][gb] ms apart, two DCs of one group intra ms, a DC 0 ms from
// itself. groupOf[i] is DC i's group.
func GroupMatrix(groupOf []int, group [][]float64, intra float64) ([][]float64, error) {
	for i, g := range groupOf {
		if g < 0 || g >= len(group) {
			return nil, fmt.Errorf("sim: groupOf[%d] %d: not a group of the %d×%d matrix", i, g, len(group), len(group))
		}
	}
	for i, row := range group {
		if len(row) != len(group) {
			return nil, fmt.Errorf("sim: group matrix row %d: %d columns, want %d", i, len(row), len(group))
		}
	}
	m := make([][]float64, len(groupOf))
	for i := range m {
		m[i] = make([]float64, len(groupOf))
		for j := range m[i] {
			switch {
			case i == j:
			case groupOf[i] == groupOf[j]:
				m[i][j] = intra
			default:
				m[i][j] = group[groupOf[i]][groupOf[j]]
			}
		}
	}
	return m, nil
}

// PaperGroupDelays is Table 2's inter-group one-way delay matrix (ms).
func PaperGroupDelays() [][]float64 {
	return [][]float64{
		{0, 10, 15, 50},
		{10, 0, 20, 17},
		{15, 20, 0, 15},
		{50, 17, 15, 0},
	}
}

// PaperGroups8 maps the 8 DCs of paper 6.3 to their groups (group i = DCs 2i, 2i+1).
func PaperGroups8() []int { return []int{0, 0, 1, 1, 2, 2, 3, 3} }

// PaperDelays8 is the 8-DC delay matrix of paper 6.3: Table 2 between
// groups, 5 ms inside a group.
func PaperDelays8() [][]float64 {
	m, err := GroupMatrix(PaperGroups8(), PaperGroupDelays(), 5)
	if err != nil {
		panic(err) // constant input; a test checks it
	}
	return m
}

// PaperHighDelayChange is the change of paper 6.3.1: the g1–g3 delay rises
// to 65 ms at t = 350 s.
func PaperHighDelayChange() DelayChange {
	return DelayChange{After: 350 * time.Second, From: []int{2, 3}, To: []int{6, 7}, Ms: 65}
}
