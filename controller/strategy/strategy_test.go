package strategy

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, s := range All() {
		got, err := Parse(s.Name())
		if err != nil || got != s {
			t.Errorf("Parse(%q) = %v, %v", s.Name(), got, err)
		}
	}
	if got, err := Parse(""); err != nil || got != Hybrid {
		t.Errorf("Parse(\"\") = %v, %v: want hybrid", got, err)
	}
	if _, err := Parse("lazy"); err == nil || !strings.Contains(err.Error(), "hybrid, proactive, reactive") {
		t.Errorf("Parse(lazy): %v", err)
	}
}

// The three strategies of paper 6.2: which rounds run, which scaling reacts.
func TestPaperStrategies(t *testing.T) {
	for _, tc := range []struct {
		s                  Strategy
		periodic, reactive bool
	}{{Hybrid, true, true}, {Proactive, true, false}, {Reactive, false, true}} {
		if tc.s.PeriodicRounds() != tc.periodic || tc.s.Reactive() != tc.reactive || tc.s.Description() == "" {
			t.Errorf("%s: periodic %v reactive %v", tc.s.Name(), tc.s.PeriodicRounds(), tc.s.Reactive())
		}
	}
}
