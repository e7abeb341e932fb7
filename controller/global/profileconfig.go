package global

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// ProfileConfig is a declared daily profile as configuration (the
// daemon's policy.declaredProfile, a simulated experiment's
// declaredProfile): one entry per datacenter, every datacenter of the
// topology declared once.
type ProfileConfig struct {
	// Hour is the length of a profile hour (a duration, "1h" when empty;
	// the simulator's compressed days use shorter ones, a daemon refuses
	// them).
	Hour string `yaml:"hour"`
	// CallDuration is the calls' mean duration ("60s" when empty, at most
	// MaxProfileCallDuration).
	CallDuration string `yaml:"callDuration"`
	// DCs are the datacenters' declared days.
	DCs []DCProfileConfig `yaml:"dcs"`
	// StageFloor: ProfilePrior.StageFloor (0 or absent: the default,
	// DefaultStageFloor; 1: off; else in (1, MaxStageFloor]).
	StageFloor float64 `yaml:"stageFloor"`
	// StageFloorMode: ProfilePrior.StageFloorMode (hold, launch,
	// hold+launch; "": DefaultStageFloorMode).
	StageFloorMode string `yaml:"stageFloorMode"`
	// StageFloorWindow: ProfilePrior.StageFloorWindow (0: the prior's
	// window).
	StageFloorWindow time.Duration `yaml:"stageFloorWindow"`
}

// DCProfileConfig is one datacenter's declared day: Rates (24 values, local
// hours 0..23) or File (a profile file "hour, value", ParseHourlyProfile),
// scaled so its largest hour is Peak when Peak is set. Its local time is
// exactly one of UTCOffset (fixed hours) and TimeZone (an IANA zone, e.g.
// Europe/London, whose daylight saving moves the profile; only with 1 h
// profile hours, time 0 the Unix epoch: a daemon).
type DCProfileConfig struct {
	DC        string    `yaml:"dc"`
	UTCOffset *float64  `yaml:"utcOffset"`
	TimeZone  string    `yaml:"timeZone"`
	Rates     []float64 `yaml:"rates"`
	File      string    `yaml:"file"`
	Peak      *float64  `yaml:"peak"`
}

// Build checks c against the topology's datacenters dcs and returns the
// profile (indexed like dcs) and the call duration; errors name the field
// under prefix. readFile reads a DC's File (nil: files refused).
func (c ProfileConfig) Build(prefix string, dcs []string, readFile func(string) ([]byte, error)) (*DailyProfile, time.Duration, error) {
	p := &DailyProfile{Hour: time.Hour, DCs: make([]DCProfile, len(dcs))}
	var err error
	if c.Hour != "" {
		if p.Hour, err = time.ParseDuration(c.Hour); err != nil || p.Hour <= 0 {
			return nil, 0, fmt.Errorf("%s.hour %q: not a duration > 0 (e.g. 1h)", prefix, c.Hour)
		}
	}
	call := DefaultProfileCallDuration
	if c.CallDuration != "" {
		if call, err = time.ParseDuration(c.CallDuration); err != nil || call < time.Second || call > MaxProfileCallDuration {
			return nil, 0, fmt.Errorf("%s.callDuration %q: not a duration in [1s, %v] (a mean call duration)", prefix, c.CallDuration, MaxProfileCallDuration)
		}
	}
	switch {
	case c.StageFloor != 0 && !(c.StageFloor >= 1 && c.StageFloor <= MaxStageFloor):
		return nil, 0, fmt.Errorf("%s.stageFloor %v: must be 0 (the default, %g), 1 (off) or in (1, %g]", prefix, c.StageFloor, DefaultStageFloor, MaxStageFloor)
	case !ValidStageFloorMode(c.StageFloorMode):
		return nil, 0, fmt.Errorf("%s.stageFloorMode %q: must be %q, %q or %q", prefix, c.StageFloorMode, StageFloorLaunch, StageFloorHold, StageFloorHoldLaunch)
	case c.StageFloorWindow < 0:
		return nil, 0, fmt.Errorf("%s.stageFloorWindow %v: must be ≥ 0 (0: the window)", prefix, c.StageFloorWindow)
	}
	if len(c.DCs) != len(dcs) {
		return nil, 0, fmt.Errorf("%s.dcs: %d entries, need one per datacenter (%d)", prefix, len(c.DCs), len(dcs))
	}
	seen := make([]bool, len(dcs))
	for i, d := range c.DCs {
		f := fmt.Sprintf("%s.dcs[%d]", prefix, i)
		k := slices.Index(dcs, d.DC)
		if k < 0 {
			return nil, 0, fmt.Errorf("%s.dc %q: not a datacenter of the topology", f, d.DC)
		}
		if seen[k] {
			return nil, 0, fmt.Errorf("%s.dc %q: declared twice", f, d.DC)
		}
		seen[k] = true
		rates := slices.Clone(d.Rates)
		switch {
		case d.File != "" && d.Rates != nil:
			return nil, 0, fmt.Errorf("%s: rates and file both given (one of them)", f)
		case d.File != "":
			if readFile == nil {
				return nil, 0, fmt.Errorf("%s.file: files are not read here", f)
			}
			data, err := readFile(d.File)
			if err != nil {
				return nil, 0, fmt.Errorf("%s.file: %w", f, err)
			}
			if rates, err = ParseHourlyProfile(data); err != nil {
				return nil, 0, fmt.Errorf("%s.file %s: %w", f, d.File, err)
			}
		case d.Rates == nil:
			return nil, 0, fmt.Errorf("%s: rates or file required", f)
		}
		if d.Peak != nil {
			top := slices.Max(append([]float64{0}, rates...))
			if !(*d.Peak > 0) || *d.Peak > MaxProfileRate || !(top > 0) || math.IsInf(top, 0) {
				return nil, 0, fmt.Errorf("%s.peak %v: must be in (0, %g] over rates not all 0", f, *d.Peak, MaxProfileRate)
			}
			for h := range rates {
				rates[h] = rates[h] / top * *d.Peak
			}
		}
		p.DCs[k] = DCProfile{Rates: rates}
		switch {
		case d.UTCOffset != nil && d.TimeZone != "":
			return nil, 0, fmt.Errorf("%s: utcOffset and timeZone both given (one of them)", f)
		case d.UTCOffset != nil:
			p.DCs[k].UTCOffset = *d.UTCOffset
		case d.TimeZone != "":
			if p.Hour != time.Hour {
				return nil, 0, fmt.Errorf("%s.timeZone %q: needs wall-clock profile hours (hour 1h), not %v", f, d.TimeZone, p.Hour)
			}
			if p.DCs[k].Zone, err = time.LoadLocation(d.TimeZone); err != nil || d.TimeZone == "Local" {
				return nil, 0, fmt.Errorf("%s.timeZone %q: not an IANA time zone (e.g. Europe/London)", f, d.TimeZone)
			}
		default:
			return nil, 0, fmt.Errorf("%s: utcOffset or timeZone required (the DC's local time; UTC is utcOffset: 0)", f)
		}
		if err := p.DCs[k].validate(f); err != nil {
			return nil, 0, err
		}
	}
	return p, call, nil
}

// MaxProfileCallDuration bounds a declared profile's call duration: the
// prior's cost per round grows with it (ProfilePrior).
const MaxProfileCallDuration = time.Hour
