package trace

import (
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kinds of generated traces.
const (
	KindRamp    = "ramp"    // the paper's ramps: 1 → 15 → 6 users/s, change interval 20–80 s
	KindDiurnal = "diurnal" // a real hourly profile (audio calls), repeated over days
	KindSine    = "sine"    // a diurnal sine with Gaussian noise
	KindStep    = "step"    // random level shifts
	KindBurst   = "burst"   // a flat base with short random bursts
)

// Kinds lists the generator kinds in a stable order.
func Kinds() []string { return []string{KindRamp, KindDiurnal, KindSine, KindStep, KindBurst} }

// DefaultIntervalSeconds is the paper's scaling interval.
const DefaultIntervalSeconds = 50

// MaxSeconds bounds the duration of a generated trace (≈ 116 days; the
// generator works at one-second resolution).
const MaxSeconds = 10_000_000

//go:embed profiles/audio.csv
var audioCSV string

// Config selects a generated trace. Zero fields take the kind's defaults.
type Config struct {
	Kind string
	Seed uint64
	// Intervals is the trace length (default: 480 for ramp, step and burst,
	// 3 days for diurnal and sine).
	Intervals int
	// IntervalSeconds is the scaling interval length (default 50).
	IntervalSeconds int
	// Scale multiplies the arrival rate (default 1 = the paper's per-DC rates).
	// Arrivals are Poisson, so a larger scale also means relatively less noise.
	Scale float64
	// Noise is the relative standard deviation of the sine's Gaussian noise
	// (0 takes the default 0.05); other kinds draw Poisson arrivals instead.
	Noise float64
	// Profile is the 24 hourly shares of the diurnal kind (default: the
	// embedded audio profile).
	Profile []float64
	// ProfileName names Profile in the comments (default "audio").
	ProfileName string
}

// withDefaults fills zero fields and validates.
func (c Config) withDefaults() (Config, error) {
	switch c.Kind {
	case KindRamp, KindStep, KindBurst:
		if c.Intervals == 0 {
			c.Intervals = 480
		}
	case KindDiurnal, KindSine:
		if c.IntervalSeconds == 0 {
			c.IntervalSeconds = DefaultIntervalSeconds
		}
		if c.Intervals == 0 {
			c.Intervals = 3 * 86400 / c.IntervalSeconds
		}
	default:
		return c, fmt.Errorf("trace: kind %q: unknown (known: %s)", c.Kind, strings.Join(Kinds(), ", "))
	}
	if c.IntervalSeconds == 0 {
		c.IntervalSeconds = DefaultIntervalSeconds
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	if c.Noise == 0 && c.Kind == KindSine {
		c.Noise = 0.05
	}
	switch {
	case c.Intervals < 1 || c.Intervals > 1_000_000:
		return c, fmt.Errorf("trace: intervals %d: must be in [1, 1000000]", c.Intervals)
	case c.IntervalSeconds < 1 || c.IntervalSeconds > 86400:
		return c, fmt.Errorf("trace: interval seconds %d: must be in [1, 86400]", c.IntervalSeconds)
	case c.Intervals*c.IntervalSeconds > MaxSeconds:
		return c, fmt.Errorf("trace: %d intervals of %d s: longer than %d s", c.Intervals, c.IntervalSeconds, MaxSeconds)
	case !(c.Scale > 0 && c.Scale <= 1e6):
		return c, fmt.Errorf("trace: scale %v: must be in (0, 1e6]", c.Scale)
	case !(c.Noise >= 0 && c.Noise <= 1):
		return c, fmt.Errorf("trace: noise %v: must be in [0, 1]", c.Noise)
	}
	if c.Kind == KindDiurnal {
		if c.Profile == nil {
			p, err := ParseProfile(strings.NewReader(audioCSV))
			if err != nil {
				return c, fmt.Errorf("trace: embedded audio profile: %w", err)
			}
			c.Profile, c.ProfileName = p, "audio"
		}
		if err := checkProfile(c.Profile); err != nil {
			return c, err
		}
		if c.ProfileName == "" {
			c.ProfileName = "custom"
		}
	}
	return c, nil
}

// Generate returns the trace of c, values rounded to 3 decimals. The same
// Config always gives the same trace.
func Generate(c Config) (*Trace, error) {
	t, _, err := GenerateWithTruth(c)
	return t, err
}

// GenerateWithTruth is Generate that also returns the expected value of every
// interval (the true mean rate before noise). Predicting it is the best any
// model can do on average: its MAPE is the noise floor of the trace.
func GenerateWithTruth(c Config) (*Trace, []float64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	g := &gen{c: c, rng: newRNG(c.Seed), truth: make([]float64, c.Intervals)}
	var vals []float64
	var desc string
	switch c.Kind {
	case KindRamp:
		vals, desc = g.ramp()
	case KindDiurnal:
		vals, desc = g.diurnal()
	case KindSine:
		vals, desc = g.sine()
	case KindStep:
		vals, desc = g.step()
	case KindBurst:
		vals, desc = g.burst()
	}
	for i, v := range vals {
		vals[i] = math.Round(v*1000) / 1000
	}
	return &Trace{Comments: []string{
		"ims-orch workload trace: one value per scaling interval of " + strconv.Itoa(c.IntervalSeconds) + " s, unit users/s",
		desc,
		"regenerate: ims-orch predict generate " + c.flags(),
	}, Values: vals}, g.truth, nil
}

// flags renders the CLI flags that reproduce c.
func (c Config) flags() string {
	f := []string{"--kind " + c.Kind, "--seed " + strconv.FormatUint(c.Seed, 10)}
	if d, _ := (Config{Kind: c.Kind}).withDefaults(); c.Intervals != d.Intervals {
		f = append(f, "--intervals "+strconv.Itoa(c.Intervals))
	}
	if c.IntervalSeconds != DefaultIntervalSeconds {
		f = append(f, "--interval-seconds "+strconv.Itoa(c.IntervalSeconds))
	}
	if c.Scale != 1 {
		f = append(f, "--scale "+strconv.FormatFloat(c.Scale, 'g', -1, 64))
	}
	if c.Kind == KindSine && c.Noise != 0.05 {
		f = append(f, "--noise "+strconv.FormatFloat(c.Noise, 'g', -1, 64))
	}
	if c.Kind == KindDiurnal && c.ProfileName != "audio" {
		f = append(f, "--profile "+c.ProfileName)
	}
	return strings.Join(f, " ")
}

type gen struct {
	c     Config
	rng   *rng
	truth []float64 // expected value per interval
}

// measure turns a per-second rate function into per-interval measurements:
// the Poisson number of arrivals in the interval divided by its length.
func (g *gen) measure(rate func(sec int) float64) []float64 {
	L := g.c.IntervalSeconds
	out := make([]float64, g.c.Intervals)
	for i := range out {
		lambda := 0.0
		for s := i * L; s < (i+1)*L; s++ {
			lambda += rate(s) * g.c.Scale
		}
		g.truth[i] = lambda / float64(L)
		out[i] = float64(g.rng.poisson(lambda)) / float64(L)
	}
	return out
}

// ramp follows the paper's simultaneous-start experiment (section 6.2.1):
// the user arrival rate starts at 1 user/s, rises by 1 user/s every change
// interval to 15, then falls by 1 every change interval to 6. Episodes
// repeat (6 → 15 → 6) after a hold of 1–6 change intervals; each episode
// draws its change interval from {20, 30, …, 80} s.
func (g *gen) ramp() ([]float64, string) {
	total := g.c.Intervals * g.c.IntervalSeconds
	rate := make([]float64, 0, total)
	level := 1
	for len(rate) < total {
		ci := 20 + 10*g.rng.intn(7)
		push := func(l int) {
			for range ci {
				rate = append(rate, float64(l))
			}
		}
		for ; level < 15; level++ {
			push(level)
		}
		for ; level > 6; level-- {
			push(level)
		}
		for range 1 + g.rng.intn(6) {
			push(level)
		}
	}
	return g.measure(func(s int) float64 { return rate[s] }),
		fmt.Sprintf("kind=ramp seed=%d scale=%g: paper 6.2.1 ramps 1 -> 15 -> 6 users/s (then 6 -> 15 -> 6), change interval 20-80 s per episode, Poisson arrivals", g.c.Seed, g.c.Scale)
}

// diurnal scales the hourly profile so its peak hour is 15 users/s (the
// paper's peak), interpolates linearly between hour midpoints (cyclic),
// repeats it every day and multiplies each day by a factor drawn uniformly
// from [0.9, 1.1] (day-to-day variation, constant within a day).
func (g *gen) diurnal() ([]float64, string) {
	p := g.c.Profile
	peak := 0.0
	for _, v := range p {
		peak = max(peak, v)
	}
	days := (g.c.Intervals*g.c.IntervalSeconds)/86400 + 1
	dayFactor := make([]float64, days)
	for d := range dayFactor {
		dayFactor[d] = 0.9 + 0.2*g.rng.float()
	}
	rate := func(s int) float64 {
		h := float64(s%86400)/3600 - 0.5 // hours since the first hour's midpoint
		i := int(math.Floor(h))
		f := h - float64(i)
		a, b := p[(i+24)%24], p[(i+25)%24]
		return 15 * dayFactor[s/86400] * (a + f*(b-a)) / peak
	}
	return g.measure(rate),
		fmt.Sprintf("kind=diurnal seed=%d scale=%g profile=%s: hourly profile peaking at 15 users/s, linear between hour midpoints, day factor U[0.9,1.1], Poisson arrivals", g.c.Seed, g.c.Scale, g.c.ProfileName)
}

// sine is a diurnal sine, 10·(1 + 0.6·sin(2π·t/day)) users/s at the middle
// of each interval, times (1 + noise·z) with z standard normal.
func (g *gen) sine() ([]float64, string) {
	L := float64(g.c.IntervalSeconds)
	out := make([]float64, g.c.Intervals)
	for i := range out {
		t := (float64(i) + 0.5) * L
		v := g.c.Scale * 10 * (1 + 0.6*math.Sin(2*math.Pi*t/86400))
		g.truth[i] = v
		out[i] = max(0, v*(1+g.c.Noise*g.rng.norm()))
	}
	return out, fmt.Sprintf("kind=sine seed=%d scale=%g noise=%g: 10*(1+0.6*sin(2*pi*t/1 day)) users/s times (1+noise*N(0,1))", g.c.Seed, g.c.Scale, g.c.Noise)
}

// step holds a level drawn uniformly from [2, 15] users/s for 5–40 intervals,
// then jumps to a new one.
func (g *gen) step() ([]float64, string) {
	L := g.c.IntervalSeconds
	rate := make([]float64, 0, g.c.Intervals*L)
	for len(rate) < g.c.Intervals*L {
		level := 2 + 13*g.rng.float()
		for range (5 + g.rng.intn(36)) * L {
			rate = append(rate, level)
		}
	}
	return g.measure(func(s int) float64 { return rate[s] }),
		fmt.Sprintf("kind=step seed=%d scale=%g: level U[2,15] users/s held 5-40 intervals, Poisson arrivals", g.c.Seed, g.c.Scale)
}

// burst is a flat 8 users/s; each interval starts a burst with probability
// 0.04 that lasts 1–4 intervals and multiplies the rate by U[2, 4].
func (g *gen) burst() ([]float64, string) {
	L := g.c.IntervalSeconds
	mult := make([]float64, g.c.Intervals)
	for i := 0; i < len(mult); i++ {
		mult[i] = 1
		if g.rng.float() < 0.04 {
			m, d := 2+2*g.rng.float(), 1+g.rng.intn(4)
			for k := i; k < min(i+d, len(mult)); k++ {
				mult[k] = m
			}
			i += d - 1
		}
	}
	return g.measure(func(s int) float64 { return 8 * mult[s/L] }),
		fmt.Sprintf("kind=burst seed=%d scale=%g: 8 users/s, bursts x U[2,4] for 1-4 intervals starting with p=0.04, Poisson arrivals", g.c.Seed, g.c.Scale)
}
