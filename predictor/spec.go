package predictor

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Model kinds a Spec can name.
const (
	KindLast        = "last"         // naive: the last observed value
	KindAR1         = "ar1"          // the paper's Eq. (1)
	KindARp         = "arp"          // AR(p), p chosen by AIC or BIC
	KindHolt        = "holt"         // Holt's linear trend (optionally damped)
	KindHoltWinters = "holt-winters" // additive Holt-Winters with a season
	KindAnalog      = "analog"       // k nearest past patterns (method of analogues)
	KindKalman      = "kalman"       // local-linear-trend Kalman filter, noise set online
	KindAuto        = "auto"         // per-series online selection among ar1, last, holt, kalman (Auto)
)

// Spec names a model and its parameters. Its text form is
//
//	kind[:key=value,...][+qNN[:win=K]]
//
// for example "ar1", "ar1:w=20", "arp:maxp=6,ic=bic", "holt:alpha=0.4,beta=0.2",
// "holt-winters:season=1728", "holt+q90". The optional "+qNN" suffix wraps the
// model in a safety margin that predicts the NN-th percentile (see Margin).
type Spec struct {
	Kind string
	// Params holds the numeric parameters given explicitly; missing ones take
	// the defaults listed by ParamHelp.
	Params map[string]float64
	// IC is the information criterion of "arp": "aic" (default) or "bic".
	IC string
	// Percentile in (0, 100) adds a safety margin predicting that percentile
	// of the next value; 0 = none.
	Percentile float64
	// MarginWindow is the number of residuals the margin keeps (0 = default).
	MarginWindow int
}

type param struct {
	name     string
	def      float64
	lo, hi   float64
	loOpen   bool // lo excluded
	hiOpen   bool // hi excluded
	integer  bool
	required bool
}

var kindParams = map[string][]param{
	KindLast: nil,
	KindAR1: {
		{name: "w", def: DefaultWindow, lo: 2, hi: 100000, integer: true},
		{name: "phimax", def: DefaultPhiMax, lo: 0, hi: 1, hiOpen: true},
	},
	KindARp: {
		{name: "maxp", def: 4, lo: 1, hi: 24, integer: true},
		{name: "win", def: 60, lo: 8, hi: 100000, integer: true},
	},
	KindHolt: {
		{name: "alpha", def: 0.5, lo: 0, hi: 1, loOpen: true},
		{name: "beta", def: 0.3, lo: 0, hi: 1},
		{name: "damp", def: 1, lo: 0, hi: 1, loOpen: true},
		{name: "fit", def: 0, lo: 0, hi: 10000, integer: true},
	},
	KindAnalog: {
		{name: "m", def: 4, lo: 1, hi: 32, integer: true},
		{name: "k", def: 6, lo: 1, hi: 64, integer: true},
		{name: "win", def: 150, lo: 2, hi: 100000, integer: true},
	},
	KindKalman: {
		{name: "count", def: 50, lo: 0, hi: 86400},
		{name: "forget", def: 0.9, lo: 0, hi: 1, loOpen: true},
	},
	KindAuto: {
		{name: "win", def: 20, lo: 3, hi: 10000, integer: true},
		{name: "guard", def: 0.5, lo: 0, hi: 1},
	},
	KindHoltWinters: {
		{name: "season", lo: 2, hi: 100000, integer: true, required: true},
		{name: "alpha", def: 0.3, lo: 0, hi: 1, loOpen: true},
		{name: "beta", def: 0.05, lo: 0, hi: 1},
		{name: "gamma", def: 0.3, lo: 0, hi: 1},
	},
}

// Margin defaults.
const (
	DefaultMarginWindow = 50
	maxMarginWindow     = 100000
)

// Kinds lists the model kinds in a stable order.
func Kinds() []string {
	return []string{KindLast, KindAR1, KindARp, KindHolt, KindHoltWinters, KindAnalog, KindKalman, KindAuto}
}

// ParamHelp describes the parameters of kind with their defaults and ranges.
func ParamHelp(kind string) string {
	ps, ok := kindParams[kind]
	if !ok {
		return ""
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		lb, rb := "[", "]"
		if p.loOpen {
			lb = "("
		}
		if p.hiOpen {
			rb = ")"
		}
		fmt.Fprintf(&b, "%s in %s%g, %g%s", p.name, lb, p.lo, p.hi, rb)
		if p.required {
			b.WriteString(" (required)")
		} else {
			fmt.Fprintf(&b, " (default %g)", p.def)
		}
	}
	if kind == KindARp {
		b.WriteString(", ic in {aic, bic} (default aic)")
	}
	return b.String()
}

// ParseSpec parses the text form of a Spec and validates every parameter.
func ParseSpec(text string) (Spec, error) {
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("predictor: model spec %q: %s", text, fmt.Sprintf(format, a...))
	}
	base, margin, hasMargin := strings.Cut(strings.TrimSpace(text), "+")
	kind, kv, hasKV := strings.Cut(base, ":")
	ps, ok := kindParams[kind]
	if !ok {
		return bad("unknown model kind %q (known: %s)", kind, strings.Join(Kinds(), ", "))
	}
	s := Spec{Kind: kind, Params: map[string]float64{}}
	if hasKV {
		pairs, err := splitKV(kv)
		if err != nil {
			return bad("%v", err)
		}
		for _, p := range pairs {
			if kind == KindARp && p[0] == "ic" {
				if p[1] != "aic" && p[1] != "bic" {
					return bad("ic=%q: must be aic or bic", p[1])
				}
				if s.IC != "" {
					return bad("parameter ic given twice")
				}
				s.IC = p[1]
				continue
			}
			var def *param
			for i := range ps {
				if ps[i].name == p[0] {
					def = &ps[i]
				}
			}
			if def == nil {
				return bad("unknown parameter %q for %s (known: %s)", p[0], kind, ParamHelp(kind))
			}
			if _, dup := s.Params[p[0]]; dup {
				return bad("parameter %s given twice", p[0])
			}
			v, err := def.parse(p[1])
			if err != nil {
				return bad("%v", err)
			}
			s.Params[p[0]] = v
		}
	}
	for _, p := range ps {
		if _, given := s.Params[p.name]; p.required && !given {
			return bad("%s needs parameter %s (e.g. %s:%s=24)", kind, p.name, kind, p.name)
		}
	}
	if kind == KindARp {
		maxp, win := s.get("maxp"), s.get("win")
		if win < 2*maxp+4 {
			return bad("win=%g is too short for maxp=%g: need win ≥ 2·maxp+4 = %g", win, maxp, 2*maxp+4)
		}
	}
	if kind == KindAnalog {
		m, k, win := s.get("m"), s.get("k"), s.get("win")
		if win < m+k {
			return bad("win=%g is too short for m=%g, k=%g: need win ≥ m+k = %g (k complete patterns)", win, m, k, m+k)
		}
	}
	if hasMargin {
		if err := s.parseMargin(margin); err != nil {
			return bad("%v", err)
		}
	}
	return s, nil
}

func (s *Spec) parseMargin(text string) error {
	q, kv, hasKV := strings.Cut(text, ":")
	num, ok := strings.CutPrefix(q, "q")
	if !ok || num == "" {
		return fmt.Errorf("margin %q: must look like q90 (the percentile to predict)", text)
	}
	pct, err := strconv.ParseFloat(num, 64)
	if err != nil || !(pct > 0 && pct < 100) || strings.ContainsAny(num, "eExXpP_+-") {
		return fmt.Errorf("margin %q: percentile %q must be a number strictly between 0 and 100", text, num)
	}
	s.Percentile = pct
	if hasKV {
		pairs, err := splitKV(kv)
		if err != nil {
			return fmt.Errorf("margin: %v", err)
		}
		for _, p := range pairs {
			if p[0] != "win" {
				return fmt.Errorf("margin: unknown parameter %q (known: win)", p[0])
			}
			if s.MarginWindow != 0 {
				return fmt.Errorf("margin: parameter win given twice")
			}
			wp := param{name: "win", lo: 5, hi: maxMarginWindow, integer: true}
			v, err := wp.parse(p[1])
			if err != nil {
				return fmt.Errorf("margin: %v", err)
			}
			s.MarginWindow = int(v)
		}
	}
	return nil
}

func splitKV(kv string) ([][2]string, error) {
	var out [][2]string
	for _, item := range strings.Split(kv, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("parameter %q: must be key=value", item)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func (p param) parse(text string) (float64, error) {
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(text, "xXpP_") {
		return 0, fmt.Errorf("parameter %s=%q: not a finite number", p.name, text)
	}
	if p.integer && v != math.Trunc(v) {
		return 0, fmt.Errorf("parameter %s=%q: must be an integer", p.name, text)
	}
	if v < p.lo || v > p.hi || (p.loOpen && v == p.lo) || (p.hiOpen && v == p.hi) {
		return 0, fmt.Errorf("parameter %s=%s: out of range (%s)", p.name, text, p.rangeText())
	}
	return v, nil
}

// rangeText formats the range of one parameter.
func (p param) rangeText() string {
	lb, rb := "[", "]"
	if p.loOpen {
		lb = "("
	}
	if p.hiOpen {
		rb = ")"
	}
	return fmt.Sprintf("%s in %s%g, %g%s", p.name, lb, p.lo, p.hi, rb)
}

// get returns parameter name of s, or its default.
func (s Spec) get(name string) float64 {
	if v, ok := s.Params[name]; ok {
		return v
	}
	for _, p := range kindParams[s.Kind] {
		if p.name == name {
			return p.def
		}
	}
	return 0
}

// String is the canonical text form: explicit parameters in name order.
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString(s.Kind)
	keys := make([]string, 0, len(s.Params)+1)
	for k := range s.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.FormatFloat(s.Params[k], 'g', -1, 64))
	}
	if s.IC != "" {
		if len(keys) == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString("ic=" + s.IC)
	}
	if s.Percentile > 0 {
		b.WriteString("+q" + strconv.FormatFloat(s.Percentile, 'g', -1, 64))
		if s.MarginWindow != 0 {
			b.WriteString(":win=" + strconv.Itoa(s.MarginWindow))
		}
	}
	return b.String()
}

// New parses spec and returns a fresh model with no history.
func New(spec string) (Model, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return s.New()
}

// New returns a fresh model for s. It re-validates s, so a Spec built by hand
// gets the same checks as a parsed one.
func (s Spec) New() (Model, error) {
	s2, err := ParseSpec(s.String())
	if err != nil {
		return nil, err
	}
	name := s2.String()
	var m Model
	switch s2.Kind {
	case KindLast:
		m = &Last{name: name}
	case KindAR1:
		m = newAR1(int(s2.get("w")), s2.get("phimax"), name)
	case KindARp:
		ic := s2.IC
		if ic == "" {
			ic = "aic"
		}
		m = newARp(int(s2.get("maxp")), int(s2.get("win")), ic, name)
	case KindHolt:
		m = newHolt(s2.get("alpha"), s2.get("beta"), s2.get("damp"), int(s2.get("fit")), name)
	case KindHoltWinters:
		m = newHoltWinters(int(s2.get("season")), s2.get("alpha"), s2.get("beta"), s2.get("gamma"), name)
	case KindKalman:
		m = newKalman(s2.get("count"), s2.get("forget"), name)
	case KindAnalog:
		m = newAnalog(int(s2.get("m")), int(s2.get("k")), int(s2.get("win")), name)
	case KindAuto:
		base := name
		if s2.Percentile > 0 {
			b := s2
			b.Percentile, b.MarginWindow = 0, 0
			base = b.String()
		}
		m = newAuto(int(s2.get("win")), s2.get("guard"), base)
	}
	if s2.Percentile > 0 {
		win := s2.MarginWindow
		if win == 0 {
			win = DefaultMarginWindow
		}
		m = newMargin(m, s2.Percentile/100, win, name)
	}
	return m, nil
}
