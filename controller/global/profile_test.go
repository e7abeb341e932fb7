package global

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// fixedForecaster plans every series at value.
type fixedForecaster struct{ value float64 }

func (f fixedForecaster) Observe(map[string]float64) error { return nil }
func (f fixedForecaster) Predict(keys []string) map[string]Forecast {
	out := map[string]Forecast{}
	for _, k := range keys {
		out[k] = Forecast{Value: f.value, Mean: f.value, Model: "fixed", Rule: RuleHorizon}
	}
	return out
}

// steps is a one-DC profile of rates held 100 s each from time 0 (the
// last held after).
type steps []float64

func (s steps) Rate(dc int, at time.Duration) float64 {
	if dc != 0 || at < 0 {
		return 0
	}
	return s[min(int(at/(100*time.Second)), len(s)-1)]
}

// profileAt returns a one-DC profile forecaster over rates whose clock is
// now after the start, the inner forecaster planning 120 and the interval
// just observed averaging 100.
func profileAt(t *testing.T, rates []float64, now time.Duration) Forecaster {
	return profilePlanning(t, rates, now, 120)
}

// profilePlanning is profileAt with the inner forecaster planning plan.
func profilePlanning(t *testing.T, rates []float64, now time.Duration, plan float64) Forecaster {
	t.Helper()
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(now)
	p := ProfilePrior{Profile: steps(rates), Origin: start, Since: start, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	f := NewProfileForecaster(fixedForecaster{plan}, p, clk, []string{"a"})
	if err := f.Observe(map[string]float64{"dp/a/a": 100, "cp/a/a": 100, "delay/a/a": 100}); err != nil {
		t.Fatal(err)
	}
	return f
}

// A rise of the profile in the planning window raises the plan a quarter
// of the way to the observed average × the profile's rise; by hand, at 150 s with
// rates 10, 10, 20: the loads over (100, 150] are 60 s × 10 = 600 calls
// (×2: the pair's two directions), at 230 s 29 s × 10 + 31 s × 20 = 910,
// ratio 910 / 600; plan 120 + ¼ (100 · 910/600 − 120).
func TestProfilePriorByHand(t *testing.T) {
	f := profileAt(t, []float64{10, 10, 20}, 150*time.Second)
	got := f.Predict([]string{"dp/a/a", "cp/a/a", "delay/a/a"})
	r := 910.0 / 600
	want := 120 + 0.5*(1-0.2*(r-1))*(100*r-120) // ProfileWeight ½, ProfileRampScale −0.2
	for _, k := range []string{"dp/a/a", "cp/a/a"} {
		if fc := got[k]; math.Abs(fc.Value-want) > 1e-9 || fc.Rule != RuleProfile || fc.Mean != 120 {
			t.Fatalf("%s: %+v, want value %v by rule %q", k, fc, want, RuleProfile)
		}
	}
	if fc := got["delay/a/a"]; fc.Value != 120 || fc.Rule != RuleHorizon {
		t.Fatalf("delay series changed: %+v", fc)
	}
}

// Arrivals before Since carry no load: at 50 s with a flat rate 10 since
// 0, the load at t ≤ 59 s is 2 × 10 × (t/1 s + 1) calls (arrivals at
// 0..t), its mean over (0, 50] 530, its largest over (50, 130] 1200.
func TestProfilePriorSince(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(50 * time.Second)
	plan := func(since time.Time) float64 {
		p := ProfilePrior{Profile: steps{10, 10}, Origin: start, Since: since, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second}
		f := NewProfileForecaster(fixedForecaster{100}, p, clk, []string{"a"})
		if err := f.Observe(map[string]float64{"dp/a/a": 100}); err != nil {
			t.Fatal(err)
		}
		return f.Predict([]string{"dp/a/a"})["dp/a/a"].Value
	}
	r := 1200.0 / 530
	if got, want := plan(start), 100+0.5*(1-0.2*(r-1))*(100*r-100); math.Abs(got-want) > 1e-9 {
		t.Fatalf("since the start: plan %v, want %v", got, want)
	}
	// the profile's steps are 0 before time 0, so a Since before it is the same
	if got := plan(start.Add(-time.Hour)); math.Abs(got-plan(start)) > 1e-9 {
		t.Fatalf("since before 0: %v", got)
	}
	// a Since after the interval: the load is 0 then, no ratio
	if got := plan(start.Add(51 * time.Second)); got != 100 {
		t.Fatalf("since now: plan %v, want the forecast's 100", got)
	}
}

// Weight moves the plan that far: 1 (flat) plans the profile's value.
func TestProfilePriorWeight(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(150 * time.Second)
	p := ProfilePrior{Profile: steps{10, 10, 20}, Origin: start, Since: start, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second, Weight: 1, FlatWeight: true}
	f := NewProfileForecaster(fixedForecaster{120}, p, clk, []string{"a"})
	if err := f.Observe(map[string]float64{"dp/a/a": 100}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Predict([]string{"dp/a/a"})["dp/a/a"].Value, 100*910.0/600; math.Abs(got-want) > 1e-9 {
		t.Fatalf("weight 1: %v, want %v", got, want)
	}
}

// RampScale moves a plan further the bigger the coming rise, at most
// MaxWeight of the way: at 150 s with rates 10, 10, 20 the rise is r =
// 910/600, so with Weight ¼ scale 2 moves ¼ (1 + 2 (r − 1)) of the way, a
// cap of 0.3 stops it there, scale −2 moves 0 of the way (clamped at 0),
// scale 0 is ProfileRampScale, and FlatWeight moves ¼ whatever the rise.
func TestProfilePriorRampScale(t *testing.T) {
	start := time.Unix(1000, 0)
	r := 910.0 / 600
	for _, c := range []struct {
		scale, top float64
		flat       bool
		w          float64
	}{
		{0, 0, true, 0.25},
		{5, 0, true, 0.25},
		{0, 0, false, 0.25 * (1 + ProfileRampScale*(r-1))},
		{2, 0, false, 0.25 * (1 + 2*(r-1))},
		{2, 0.3, false, 0.3},
		{-2, 0, false, 0},
	} {
		clk := clock.NewVirtual(start)
		clk.Advance(150 * time.Second)
		p := ProfilePrior{Profile: steps{10, 10, 20}, Origin: start, Since: start, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second,
			Weight: 0.25, RampScale: c.scale, MaxWeight: c.top, FlatWeight: c.flat}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		f := NewProfileForecaster(fixedForecaster{120}, p, clk, []string{"a"})
		if err := f.Observe(map[string]float64{"dp/a/a": 100}); err != nil {
			t.Fatal(err)
		}
		fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]
		if want := 120 + c.w*(100*r-120); math.Abs(fc.Value-want) > 1e-9 {
			t.Errorf("scale %v cap %v flat %v: plan %v, want %v (weight %v)", c.scale, c.top, c.flat, fc.Value, want, c.w)
		}
		if (c.w == 0) != (fc.Rule != RuleProfile) {
			t.Errorf("scale %v: rule %q with weight %v", c.scale, fc.Rule, c.w)
		}
	}
}

// By default (ProfileWeight ½, ProfileRampScale −0.2) a moderate rise
// moves a plan further than a big one, and a rise of 6 or more not at all:
// rates 10 → 20 (r = 910/600) moves ½ (1 − 0.2 (r − 1)) ≈ 0.45 of the way,
// 1 → 20 (r = (29 + 31 · 20) / 60 ≈ 10.8) moves none.
func TestProfilePriorDefaultFadesBigRises(t *testing.T) {
	r := 910.0 / 600
	f := profilePlanning(t, []float64{10, 10, 20}, 150*time.Second, 100)
	if got, want := f.Predict([]string{"dp/a/a"})["dp/a/a"].Value, 100+0.5*(1-0.2*(r-1))*(100*r-100); math.Abs(got-want) > 1e-9 {
		t.Fatalf("moderate rise: plan %v, want %v", got, want)
	}
	f = profilePlanning(t, []float64{1, 1, 20}, 150*time.Second, 100)
	if fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]; fc.Value != 100 || fc.Rule == RuleProfile {
		t.Fatalf("big rise: %+v, want the forecast's 100", fc)
	}
}

// KindWeights replace Weight per series kind: cp 0 leaves the CSCFs'
// forecast, dp 1 plans the profile's value, a kind not listed moves Weight
// (½; FlatWeight: whatever the rise).
func TestProfilePriorKindWeights(t *testing.T) {
	start := time.Unix(1000, 0)
	r := 910.0 / 600
	for _, c := range []struct {
		kinds  map[string]float64
		cp, dp float64
	}{
		{map[string]float64{KindCP: 0, KindDP: 1}, 120, 100 * r},
		{map[string]float64{KindDP: 0.25}, 120 + 0.5*(100*r-120), 120 + 0.25*(100*r-120)},
	} {
		clk := clock.NewVirtual(start)
		clk.Advance(150 * time.Second)
		p := ProfilePrior{Profile: steps{10, 10, 20}, Origin: start, Since: start, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second,
			KindWeights: c.kinds, FlatWeight: true}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		f := NewProfileForecaster(fixedForecaster{120}, p, clk, []string{"a"})
		if err := f.Observe(map[string]float64{"dp/a/a": 100, "cp/a/a": 100}); err != nil {
			t.Fatal(err)
		}
		got := f.Predict([]string{"dp/a/a", "cp/a/a"})
		if math.Abs(got["cp/a/a"].Value-c.cp) > 1e-9 || math.Abs(got["dp/a/a"].Value-c.dp) > 1e-9 {
			t.Errorf("kinds %v: cp %v dp %v, want %v and %v", c.kinds, got["cp/a/a"].Value, got["dp/a/a"].Value, c.cp, c.dp)
		}
	}
}

// A flat or falling profile, or a rise the forecast already plans for,
// leaves the forecast.
func TestProfilePriorLeaves(t *testing.T) {
	for name, c := range map[string]struct {
		rates []float64
		now   time.Duration
	}{
		"flat":            {[]float64{10, 10, 10}, 150 * time.Second},
		"falling":         {[]float64{10, 10, 5}, 150 * time.Second},
		"rise beyond":     {[]float64{10, 10, 10, 20}, 150 * time.Second},
		"small rise":      {[]float64{10, 10, 11}, 150 * time.Second},
		"no profile load": {[]float64{0, 0, 10}, 100 * time.Second},
	} {
		f := profileAt(t, c.rates, c.now)
		if fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]; fc.Value != 120 || fc.Rule != RuleHorizon {
			t.Errorf("%s: %+v, want the forecast's 120", name, fc)
		}
	}
}

// A falling profile never raises a plan, even one below the observed
// average × its fall (10 → 9: ratio 0.95, 95 > a plan of 80).
func TestProfilePriorNeverRaisesOnAFall(t *testing.T) {
	f := profilePlanning(t, []float64{10, 10, 9}, 150*time.Second, 80)
	if fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]; fc.Value != 80 || fc.Rule != RuleHorizon {
		t.Fatalf("%+v, want the forecast's 80", fc)
	}
}

func TestProfilePriorValidate(t *testing.T) {
	ok := ProfilePrior{Profile: steps{1}, Origin: time.Unix(0, 0), CallDuration: time.Minute, Window: time.Minute, Interval: time.Minute}
	for name, c := range map[string]struct {
		mut  func(*ProfilePrior)
		want string
	}{
		"no profile": {func(p *ProfilePrior) { p.Profile = nil }, "no profile"},
		"no origin":  {func(p *ProfilePrior) { p.Origin = time.Time{} }, "no origin"},
		"call":       {func(p *ProfilePrior) { p.CallDuration = 0 }, "call duration"},
		"window":     {func(p *ProfilePrior) { p.Window = 0 }, "window"},
		"weight":     {func(p *ProfilePrior) { p.Weight = 1.5 }, "weight"},
		"max weight": {func(p *ProfilePrior) { p.MaxWeight = -0.1 }, "max weight"},
		"ramp scale": {func(p *ProfilePrior) { p.RampScale = math.NaN() }, "ramp scale"},
		"kind":       {func(p *ProfilePrior) { p.KindWeights = map[string]float64{"delay": 1} }, "kind weights"},
		"kind range": {func(p *ProfilePrior) { p.KindWeights = map[string]float64{KindDP: 2} }, "kind weights"},
	} {
		p := ok
		c.mut(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// DailyProfile.Rate by hand: local hours, linear between them, the day
// repeating, the DC's UTC offset.
func TestDailyProfileRate(t *testing.T) {
	r := make([]float64, 24)
	for h := range r {
		r[h] = float64(h)
	}
	p := &DailyProfile{Hour: 100 * time.Second, DCs: []DCProfile{{Rates: r}, {Rates: r, UTCOffset: 9}, {Rates: r, UTCOffset: -6.5}}}
	for _, c := range []struct {
		dc   int
		at   time.Duration
		want float64
	}{
		{0, 0, 0}, {0, 150 * time.Second, 1.5}, {0, 2350 * time.Second, 23 - 11.5}, // 23 → 0 over the last hour
		{0, 2400 * time.Second, 0}, {0, -50 * time.Second, 11.5}, {0, 2400*time.Second*3 + 100*time.Second, 1},
		{1, 0, 9}, {1, 1450 * time.Second, 23 - 11.5}, {1, 1400 * time.Second, 23}, {1, 1550 * time.Second, 0.5},
		{2, 0, 17.5}, {2, 700 * time.Second, 0.5}, {3, 0, 0}, {-1, 0, 0},
	} {
		if got := p.Rate(c.dc, c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("dc %d at %v: %v, want %v", c.dc, c.at, got, c.want)
		}
	}
}

func TestParseHourlyProfile(t *testing.T) {
	var b strings.Builder
	b.WriteString("# audio\n\n")
	for h := 23; h >= 0; h-- {
		b.WriteString(strings.Repeat(" ", h%2) + itoa(h) + ", 0.0" + itoa(h+1) + "\n")
	}
	r, err := ParseHourlyProfile([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 24 || r[0] != 0.01 || r[23] != 0.024 {
		t.Fatalf("%v", r)
	}
	if r2, err := ParseHourlyProfile([]byte("\ufeffHour, audio\r\n" + b.String())); err != nil || !slices.Equal(r2, r) {
		t.Fatalf("BOM and header: %v %v", r2, err)
	}
	for name, c := range map[string]struct{ in, want string }{
		"no comma":  {"0 1\n", "line 1"},
		"2 headers": {"hour, value\nhour, value\n", "line 2: hour \"hour\""},
		"late head": {"0, 1\nhour, value\n", "line 2: hour \"hour\""},
		"hour":      {"24, 1\n", "hour \"24\""},
		"twice":     {"0, 1\n0, 2\n", "line 2: hour 0 given twice"},
		"value":     {"0, -1\n", "value \"-1\""},
		"nan":       {"0, NaN\n", "value \"NaN\""},
		"missing":   {"0, 1\n", "hour 1 missing"},
		"too large": {strings.Repeat("#", MaxProfileFileBytes+1), "bytes"},
	} {
		if _, err := ParseHourlyProfile([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// FuzzParseHourlyProfile: any input parses to 24 valid rates or an error.
func FuzzParseHourlyProfile(f *testing.F) {
	f.Add([]byte("0, 0.0555\n1, 0.027\n"))
	f.Add([]byte("# x\n23,1e6\n"))
	f.Add([]byte("\ufeffhour,value\n0,1\n"))
	f.Add([]byte("hour, value\r\n0, 1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseHourlyProfile(data)
		if err != nil {
			return
		}
		if err := (DCProfile{Rates: r}).validate("fuzz"); err != nil {
			t.Fatalf("parsed %v: %v", r, err)
		}
	})
}

func TestProfileConfigBuild(t *testing.T) {
	flat := make([]float64, 24)
	for h := range flat {
		flat[h] = float64(h + 1)
	}
	files := map[string]string{}
	var b strings.Builder
	for h := 0; h < 24; h++ {
		b.WriteString(itoa(h) + ", " + itoa(2*(h+1)) + "\n")
	}
	files["day.csv"] = b.String()
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	peak, nine, zero, fifteen := 48.0, 9.0, 0.0, 15.0
	c := ProfileConfig{Hour: "100s", CallDuration: "90s", DCs: []DCProfileConfig{
		{DC: "b", UTCOffset: &nine, File: "day.csv", Peak: &peak}, {DC: "a", UTCOffset: &zero, Rates: flat}}}
	p, call, err := c.Build("policy.declaredProfile", []string{"a", "b"}, read)
	if err != nil {
		t.Fatal(err)
	}
	if call != 90*time.Second || p.Hour != 100*time.Second || p.DCs[0].Rates[3] != 4 || p.DCs[1].UTCOffset != 9 || p.DCs[1].Rates[23] != 48 || p.DCs[1].Rates[0] != 2 {
		t.Fatalf("%v %+v", call, p)
	}
	if _, call, err := (ProfileConfig{DCs: []DCProfileConfig{{DC: "a", TimeZone: "Asia/Tokyo", Rates: flat}}}).Build("x", []string{"a"}, nil); err != nil || call != DefaultProfileCallDuration {
		t.Fatalf("defaults: %v %v", call, err)
	}
	bad := func(mut func(*ProfileConfig)) ProfileConfig {
		c := ProfileConfig{DCs: []DCProfileConfig{{DC: "a", UTCOffset: &zero, Rates: flat}, {DC: "b", TimeZone: "Europe/London", Rates: flat}}}
		mut(&c)
		return c
	}
	for name, c := range map[string]struct {
		c    ProfileConfig
		want string
	}{
		"hour":        {bad(func(c *ProfileConfig) { c.Hour = "-1h" }), "p.hour"},
		"call":        {bad(func(c *ProfileConfig) { c.CallDuration = "0s" }), "p.callDuration"},
		"count":       {bad(func(c *ProfileConfig) { c.DCs = c.DCs[:1] }), "p.dcs: 1 entries"},
		"unknown dc":  {bad(func(c *ProfileConfig) { c.DCs[1].DC = "z" }), "p.dcs[1].dc \"z\""},
		"twice":       {bad(func(c *ProfileConfig) { c.DCs[1].DC = "a" }), "declared twice"},
		"both":        {bad(func(c *ProfileConfig) { c.DCs[0].File = "day.csv" }), "p.dcs[0]: rates and file"},
		"neither":     {bad(func(c *ProfileConfig) { c.DCs[0].Rates = nil }), "p.dcs[0]: rates or file"},
		"no file":     {bad(func(c *ProfileConfig) { c.DCs[0].Rates, c.DCs[0].File = nil, "x.csv" }), "p.dcs[0].file: no such file"},
		"short":       {bad(func(c *ProfileConfig) { c.DCs[1].Rates = flat[:23] }), "p.dcs[1].rates: 23 values"},
		"negative":    {bad(func(c *ProfileConfig) { c.DCs[1].Rates = append([]float64{-1}, flat[1:]...) }), "p.dcs[1].rates[0] -1"},
		"offset":      {bad(func(c *ProfileConfig) { c.DCs[0].UTCOffset = &fifteen }), "p.dcs[0].utcOffset"},
		"long call":   {bad(func(c *ProfileConfig) { c.CallDuration = "61m" }), "p.callDuration \"61m\": not a duration in [1s, 1h0m0s]"},
		"no zone":     {bad(func(c *ProfileConfig) { c.DCs[0].UTCOffset = nil }), "p.dcs[0]: utcOffset or timeZone required"},
		"two zones":   {bad(func(c *ProfileConfig) { c.DCs[1].UTCOffset = &zero }), "p.dcs[1]: utcOffset and timeZone both given"},
		"bad zone":    {bad(func(c *ProfileConfig) { c.DCs[1].TimeZone = "Europe/Nowhere" }), "p.dcs[1].timeZone \"Europe/Nowhere\": not an IANA time zone"},
		"local zone":  {bad(func(c *ProfileConfig) { c.DCs[1].TimeZone = "Local" }), "p.dcs[1].timeZone \"Local\""},
		"zone hours":  {bad(func(c *ProfileConfig) { c.Hour = "100s" }), "p.dcs[1].timeZone \"Europe/London\": needs wall-clock profile hours"},
		"peak":        {bad(func(c *ProfileConfig) { z := 0.0; c.DCs[0].Peak = &z }), "p.dcs[0].peak"},
		"peak zeroes": {bad(func(c *ProfileConfig) { c.DCs[0].Rates = make([]float64, 24); c.DCs[0].Peak = &peak }), "p.dcs[0].peak"},
	} {
		if _, _, err := c.c.Build("p", []string{"a", "b"}, read); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}

// Lower moves a plan down, a quarter of the way (flat), on a profile falling
// over the whole window; off it leaves the plan. Rates 10 then 5 from
// 200 s; the load at t is 2 × (60 s of arrivals): 1200 up to 199 s, then
// 2 (1595 − 5 t/s). At 150 s the window (150, 230] still reaches 1200 (r
// = 1: nothing); at 210 s the interval (160, 210] averages (39 × 1200 +
// 12 540) / 50 = 1186.8 and the window (210, 290] peaks at 211 s, 1080.
func TestProfilePriorLower(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(150 * time.Second)
	flat := true
	plan := func(lower bool) Forecast {
		p := ProfilePrior{Profile: steps{10, 10, 5}, Origin: start, Since: start, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second, Lower: lower, Weight: 0.25, FlatWeight: true}
		if !flat {
			p.Weight, p.FlatWeight = 0, false
		}
		f := NewProfileForecaster(fixedForecaster{120}, p, clk, []string{"a"})
		if err := f.Observe(map[string]float64{"dp/a/a": 100}); err != nil {
			t.Fatal(err)
		}
		return f.Predict([]string{"dp/a/a"})["dp/a/a"]
	}
	if fc := plan(true); fc.Value != 120 || fc.Rule != RuleHorizon {
		t.Fatalf("at 150 s: %+v, want the forecast's 120", fc)
	}
	clk.Advance(60 * time.Second)
	want := 120 + 0.25*(100*1080/1186.8-120)
	if on := plan(true); math.Abs(on.Value-want) > 1e-9 || on.Rule != RuleProfile {
		t.Fatalf("lower: %+v, want %v", on, want)
	}
	if off := plan(false); off.Value != 120 || off.Rule != RuleHorizon {
		t.Fatalf("off: %+v", off)
	}
	// The default weight fades with rises only: a fall (r ≈ 0.91) moves
	// ProfileWeight of the way, not more.
	flat = false
	want = 120 + ProfileWeight*(100*1080/1186.8-120)
	if on := plan(true); math.Abs(on.Value-want) > 1e-9 || on.Rule != RuleProfile {
		t.Fatalf("lower, default weight: %+v, want %v", on, want)
	}
}

// A time zone's daylight saving moves the profile: London's rate at
// 12:00 UTC is its local noon's in January (GMT) and its local 13:00's in
// July (BST); a fixed offset 0 stays at noon. The config's timeZone builds
// the zone.
func TestDailyProfileTimeZone(t *testing.T) {
	r := make([]float64, 24)
	for h := range r {
		r[h] = float64(h)
	}
	c := ProfileConfig{DCs: []DCProfileConfig{{DC: "london", TimeZone: "Europe/London", Rates: r}, {DC: "fixed", UTCOffset: new(float64), Rates: r}}}
	p, _, err := c.Build("p", []string{"london", "fixed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate("p"); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(0, 0)
	for _, c := range []struct {
		at           time.Time
		london, utc0 float64
	}{
		{time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), 12, 12},
		{time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC), 13, 12},
		// 29 March 2026, 01:00 UTC: clocks go forward from 01:00 GMT to 02:00 BST.
		{time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC), 0.5, 0.5},
		{time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), 2.5, 1.5},
	} {
		if got := p.Rate(0, c.at.Sub(epoch)); math.Abs(got-c.london) > 1e-9 {
			t.Errorf("London at %v: %v, want %v", c.at, got, c.london)
		}
		if got := p.Rate(1, c.at.Sub(epoch)); math.Abs(got-c.utc0) > 1e-9 {
			t.Errorf("utcOffset 0 at %v: %v, want %v", c.at, got, c.utc0)
		}
	}
	p.Hour = 100 * time.Second
	if err := p.Validate("p"); err == nil || !strings.Contains(err.Error(), "p.dcs[0].timeZone") {
		t.Fatalf("zone with 100 s hours: %v", err)
	}
}

// pairLoadsByHand is the prior's load before the rates were evaluated
// once per round: every second's load re-sums its call duration.
func pairLoadsByHand(f *profileForecaster, a, b int, first, last, since time.Duration) []float64 {
	var loads []float64
	for at := first; at <= last; at += time.Second {
		s := 0.0
		for t := at - f.p.CallDuration + time.Second; t <= at; t += time.Second {
			if t >= since {
				s += f.pairRate(a, b, t) + f.pairRate(b, a, t)
			}
		}
		loads = append(loads, s)
	}
	return loads
}

// pairLoads gives exactly (bit for bit) the loads of re-summing every
// second's call duration, over whole and fractional call durations, with
// and without a start inside the span.
func TestProfilePairLoadsExact(t *testing.T) {
	r := make([]float64, 24)
	for h := range r {
		r[h] = 1 + float64((h*7)%24)/3
	}
	prof := &DailyProfile{Hour: 100 * time.Second, DCs: []DCProfile{{Rates: r}, {Rates: r, UTCOffset: 9}, {Rates: r, UTCOffset: -5.5}}}
	for _, call := range []time.Duration{time.Second, 60 * time.Second, 90500 * time.Millisecond} {
		for _, since := range []time.Duration{math.MinInt64, 1234 * time.Second} {
			p := ProfilePrior{Profile: prof, CallDuration: call, Window: 80 * time.Second, Interval: 50 * time.Second}
			f := NewProfileForecaster(fixedForecaster{1}, p, clock.NewVirtual(time.Unix(0, 0)), []string{"a", "b", "c"}).(*profileForecaster)
			first, last := 1200*time.Second+300*time.Millisecond, 1330*time.Second
			got, want := f.pairLoads(0, 2, first, last, since), pairLoadsByHand(f, 0, 2, first, last, since)
			if len(got) != len(want) || len(got) != 130 {
				t.Fatalf("call %v: %d loads, want %d", call, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("call %v since %v: load %d %v, want %v", call, since, i, got[i], want[i])
				}
			}
		}
	}
}
