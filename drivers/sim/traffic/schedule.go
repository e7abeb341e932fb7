package traffic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Shape is how the rate moves inside a change interval.
type Shape string

// Shapes.
const (
	// Step keeps Rates[k] for the whole k-th change interval (the paper's
	// traffic generators change their rate once per change interval).
	Step Shape = "step"
	// Linear interpolates from Rates[k] to Rates[k+1] across interval k.
	Linear Shape = "linear"
)

// DCSchedule is the user arrival rate of one datacenter.
type DCSchedule struct {
	DC int
	// Start is when this DC's generator starts, from the experiment start
	// (asynchronous start, paper 6.2.2). Before it the rate is 0.
	Start time.Duration
	// Rates are users/s, one per change interval from Start on.
	Rates []float64
}

// Schedule gives every datacenter's user arrival rate over time.
type Schedule struct {
	ChangeInterval time.Duration
	Shape          Shape
	// Stop makes the rate 0 after a DC's last change interval; otherwise it
	// holds the last rate.
	Stop bool
	DCs  []DCSchedule
}

// Limits of a schedule (they keep a parsed file's memory bounded).
const (
	MaxRates = 100000 // per DC
	MaxRate  = 1e5    // users/s
	MaxDCs   = 256
)

// Validate checks the schedule for n datacenters (n ≤ 0: any count);
// errors name the field.
func (s *Schedule) Validate(n int) error {
	if s.ChangeInterval <= 0 {
		return fmt.Errorf("traffic: schedule changeInterval %v: must be > 0", s.ChangeInterval)
	}
	if s.Shape != Step && s.Shape != Linear {
		return fmt.Errorf("traffic: schedule shape %q: must be %q or %q", s.Shape, Step, Linear)
	}
	if len(s.DCs) > MaxDCs {
		return fmt.Errorf("traffic: schedule dcs: %d entries, at most %d", len(s.DCs), MaxDCs)
	}
	seen := map[int]bool{}
	for i, d := range s.DCs {
		f := fmt.Sprintf("traffic: schedule dcs[%d]", i)
		if d.DC < 0 || (n > 0 && d.DC >= n) || d.DC >= MaxDCs {
			return fmt.Errorf("%s.dc %d: not a datacenter index (0..%d)", f, d.DC, max(n, MaxDCs)-1)
		}
		if seen[d.DC] {
			return fmt.Errorf("%s.dc %d: duplicate", f, d.DC)
		}
		seen[d.DC] = true
		if d.Start < 0 {
			return fmt.Errorf("%s.start %v: must not be negative", f, d.Start)
		}
		if len(d.Rates) == 0 || len(d.Rates) > MaxRates {
			return fmt.Errorf("%s.rates: %d rates, need 1..%d", f, len(d.Rates), MaxRates)
		}
		for k, r := range d.Rates {
			if !(r >= 0) || r > MaxRate {
				return fmt.Errorf("%s.rates[%d] %v: must be in [0, %v] users/s", f, k, r, MaxRate)
			}
		}
	}
	return nil
}

// Rate returns DC dc's arrival rate (users/s) at off after the experiment start.
func (s *Schedule) Rate(dc int, off time.Duration) float64 {
	for i := range s.DCs {
		if s.DCs[i].DC == dc {
			return s.DCs[i].rate(s, off)
		}
	}
	return 0
}

func (d *DCSchedule) rate(s *Schedule, off time.Duration) float64 {
	if off < d.Start || len(d.Rates) == 0 {
		return 0
	}
	rel := off - d.Start
	k := int(rel / s.ChangeInterval)
	if k >= len(d.Rates) {
		if s.Stop {
			return 0
		}
		return d.Rates[len(d.Rates)-1]
	}
	if s.Shape == Linear && k+1 < len(d.Rates) {
		frac := float64(rel-time.Duration(k)*s.ChangeInterval) / float64(s.ChangeInterval)
		return d.Rates[k] + frac*(d.Rates[k+1]-d.Rates[k])
	}
	return d.Rates[k]
}

// Ramp returns the rates from → peak → to in steps of step users/s (the
// paper's ramps: Ramp(1, 15, 6, 1) is 1, 2, …, 15, 14, …, 6).
func Ramp(from, peak, to, step float64) ([]float64, error) {
	for _, f := range []struct {
		n string
		x float64
	}{{"from", from}, {"peak", peak}, {"to", to}} {
		if !(f.x >= 0) || f.x > MaxRate {
			return nil, fmt.Errorf("traffic: ramp %s %v: must be in [0, %v]", f.n, f.x, MaxRate)
		}
	}
	if !(step > 0) || math.IsInf(step, 0) {
		return nil, fmt.Errorf("traffic: ramp step %v: must be a finite number > 0", step)
	}
	if peak < from || peak < to {
		return nil, fmt.Errorf("traffic: ramp peak %v: below from %v or to %v", peak, from, to)
	}
	if n := (peak-from)/step + (peak-to)/step + 1; n > MaxRates {
		return nil, fmt.Errorf("traffic: ramp: %.0f rates, at most %d (raise step)", n, MaxRates)
	}
	var out []float64
	const eps = 1e-9
	for i := 0; ; i++ {
		r := from + float64(i)*step
		if r > peak-eps {
			break
		}
		out = append(out, r)
	}
	out = append(out, peak)
	for i := 1; ; i++ {
		r := peak - float64(i)*step
		if r < to-eps {
			break
		}
		out = append(out, r)
	}
	if out[len(out)-1] != to && to < peak {
		out = append(out, to)
	}
	return out, nil
}

// File is the YAML/JSON form of a schedule:
//
//	changeInterval: 30s
//	shape: step          # or linear
//	stop: false          # true: rate 0 after the last interval
//	dcs:
//	  - {dc: 0, start: 0s, rates: [1, 5, 10, 15, 10, 6]}
//	  - {dc: 1, start: 120s, ramp: {from: 5, peak: 15, to: 5, step: 1}}
type File struct {
	ChangeInterval string   `yaml:"changeInterval"`
	Shape          string   `yaml:"shape"`
	Stop           bool     `yaml:"stop"`
	DCs            []FileDC `yaml:"dcs"`
}

// FileDC is one datacenter of a File: rates, or a ramp.
type FileDC struct {
	DC    *int      `yaml:"dc"`
	Start string    `yaml:"start"`
	Rates []float64 `yaml:"rates"`
	Ramp  *FileRamp `yaml:"ramp"`
}

// FileRamp is Ramp's arguments.
type FileRamp struct {
	From float64 `yaml:"from"`
	Peak float64 `yaml:"peak"`
	To   float64 `yaml:"to"`
	Step float64 `yaml:"step"`
}

// ParseSchedule reads a schedule File (YAML or JSON) for n datacenters
// (n ≤ 0: any). Unknown fields, bad durations and bad rates are errors that
// name the field.
func ParseSchedule(data []byte, n int) (*Schedule, error) {
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("traffic: schedule: %d bytes, at most 1 MiB", len(data))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("traffic: schedule: empty document")
		}
		return nil, fmt.Errorf("traffic: schedule: %w", err)
	}
	return f.Schedule(n)
}

// Schedule converts a decoded File (for example one embedded in an
// experiment file) for n datacenters (n ≤ 0: any); errors name the field.
func (f *File) Schedule(n int) (*Schedule, error) {
	s := &Schedule{Shape: Shape(strings.ToLower(strings.TrimSpace(f.Shape))), Stop: f.Stop}
	if s.Shape == "" {
		s.Shape = Step
	}
	var err error
	if s.ChangeInterval, err = time.ParseDuration(strings.TrimSpace(f.ChangeInterval)); err != nil {
		return nil, fmt.Errorf("traffic: schedule changeInterval %q: %v", f.ChangeInterval, err)
	}
	for i, d := range f.DCs {
		fld := fmt.Sprintf("traffic: schedule dcs[%d]", i)
		if d.DC == nil {
			return nil, fmt.Errorf("%s.dc: required", fld)
		}
		ds := DCSchedule{DC: *d.DC}
		if strings.TrimSpace(d.Start) != "" {
			if ds.Start, err = time.ParseDuration(strings.TrimSpace(d.Start)); err != nil {
				return nil, fmt.Errorf("%s.start %q: %v", fld, d.Start, err)
			}
		}
		switch {
		case d.Ramp != nil && d.Rates != nil:
			return nil, fmt.Errorf("%s: give rates or ramp, not both", fld)
		case d.Ramp != nil:
			if ds.Rates, err = Ramp(d.Ramp.From, d.Ramp.Peak, d.Ramp.To, d.Ramp.Step); err != nil {
				return nil, fmt.Errorf("%s.ramp: %v", fld, err)
			}
		default:
			ds.Rates = d.Rates
		}
		s.DCs = append(s.DCs, ds)
	}
	if err := s.Validate(n); err != nil {
		return nil, err
	}
	return s, nil
}

// Uniform returns a step schedule giving n datacenters the same rates from
// the start.
func Uniform(n int, changeInterval time.Duration, rates []float64) *Schedule {
	s := &Schedule{ChangeInterval: changeInterval, Shape: Step}
	for i := 0; i < n; i++ {
		s.DCs = append(s.DCs, DCSchedule{DC: i, Rates: append([]float64(nil), rates...)})
	}
	return s
}
