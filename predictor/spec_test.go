package predictor

import (
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name, in, canon, err string
	}{
		{name: "ar1", in: "ar1", canon: "ar1"},
		{name: "ar1 params", in: " ar1:w=20,phimax=0.5 ", canon: "ar1:phimax=0.5,w=20"},
		{name: "arp bic", in: "arp:ic=bic,maxp=3", canon: "arp:maxp=3,ic=bic"},
		{name: "holt margin", in: "holt+q90", canon: "holt+q90"},
		{name: "margin window", in: "holt:alpha=0.4+q97.5:win=30", canon: "holt:alpha=0.4+q97.5:win=30"},
		{name: "holt-winters", in: "holt-winters:season=24", canon: "holt-winters:season=24"},
		{name: "last", in: "last", canon: "last"},
		{name: "analog", in: "analog:win=60,k=3", canon: "analog:k=3,win=60"},
		{name: "kalman", in: "kalman:count=0,forget=0.95", canon: "kalman:count=0,forget=0.95"},
		{name: "kalman margin", in: "kalman+q90", canon: "kalman+q90"},
		{name: "analog window too short", in: "analog:m=8,k=6,win=10", err: "need win ≥ m+k = 14"},
		{name: "analog k zero", in: "analog:k=0", err: "k=0: out of range"},
		{name: "kalman forget zero", in: "kalman:forget=0", err: "forget=0: out of range"},
		{name: "kalman negative count", in: "kalman:count=-1", err: "count=-1: out of range"},
		{name: "empty", in: "", err: `unknown model kind ""`},
		{name: "unknown kind", in: "lstm", err: `unknown model kind "lstm"`},
		{name: "unknown param", in: "holt:alfa=0.2", err: `unknown parameter "alfa" for holt`},
		{name: "not a number", in: "ar1:w=ten", err: `w="ten": not a finite number`},
		{name: "not integer", in: "ar1:w=2.5", err: "must be an integer"},
		{name: "out of range", in: "ar1:phimax=1", err: "phimax=1: out of range"},
		{name: "alpha zero", in: "holt:alpha=0", err: "alpha=0: out of range"},
		{name: "nan", in: "holt:alpha=NaN", err: "not a finite number"},
		{name: "duplicate", in: "ar1:w=3,w=4", err: "given twice"},
		{name: "missing season", in: "holt-winters", err: "needs parameter season"},
		{name: "bad kv", in: "ar1:w", err: "must be key=value"},
		{name: "bad ic", in: "arp:ic=hqc", err: "must be aic or bic"},
		{name: "arp window too short", in: "arp:maxp=10,win=20", err: "too short"},
		{name: "bad margin", in: "holt+p90", err: "must look like q90"},
		{name: "margin 100", in: "holt+q100", err: "strictly between 0 and 100"},
		{name: "margin param", in: "holt+q90:w=3", err: `unknown parameter "w"`},
		{name: "margin window small", in: "holt+q90:win=2", err: "out of range"},
		{name: "two margins", in: "holt+q90+q80", err: "strictly between"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSpec(%q) error = %v, want it to contain %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tc.canon {
				t.Errorf("String = %q, want %q", got, tc.canon)
			}
			m, err := s.New()
			if err != nil {
				t.Fatal(err)
			}
			if m.Name() != tc.canon {
				t.Errorf("Name = %q, want %q", m.Name(), tc.canon)
			}
		})
	}
}

func TestSpecNewRevalidates(t *testing.T) {
	s := Spec{Kind: KindAR1, Params: map[string]float64{"w": 1}}
	if _, err := s.New(); err == nil {
		t.Error("hand-built spec with w=1 accepted")
	}
	if ParamHelp("nope") != "" || !strings.Contains(ParamHelp(KindARp), "ic in {aic, bic}") {
		t.Error("ParamHelp")
	}
}

// FuzzParseSpec: any text either fails with an error or gives a spec whose
// canonical form parses back to itself and builds a model.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"ar1", "ar1:w=20,phimax=0.5", "arp:ic=bic", "holt+q90", "holt:alpha=0.4+q97.5:win=30",
		"holt-winters:season=24", "last", "holt:fit=50", "ar1:w=1e1", "holt+q", ":", "+", "ar1:,",
		"analog:m=3,k=2,win=9", "analog:win=5", "kalman:count=0,forget=1", "kalman+q90:win=20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSpec(text)
		if err != nil {
			return
		}
		c := s.String()
		s2, err := ParseSpec(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, text, err)
		}
		if s2.String() != c {
			t.Fatalf("canonical form not stable: %q → %q", c, s2.String())
		}
		if s.Kind == KindHoltWinters && s.get("season") > 1000 || s.get("win") > 1000 || s.get("fit") > 1000 || s.get("w") > 1000 {
			return // valid but large: skip building to keep the fuzzer fast
		}
		m, err := s.New()
		if err != nil {
			t.Fatalf("%q parses but New fails: %v", text, err)
		}
		if m.Name() != c {
			t.Fatalf("Name %q, canonical %q", m.Name(), c)
		}
	})
}
