// Package strategy owns the scaling strategies of paper 6.2 as values of one
// small interface: which rounds the global controller runs and whether the
// local controllers scale out reactively between them. The API's enum, the
// daemon's config validation, the composition of the controllers
// (controller/system) and the OpenAPI document (checked by a test) all
// derive from All, so a new strategy is added here and nowhere else.
package strategy

import (
	"fmt"
	"strings"
)

// Strategy is one scaling strategy.
type Strategy interface {
	// Name is the strategy's name in configs, the API and the CLI.
	Name() string
	// PeriodicRounds: the global controller runs a proactive round every
	// interval. False: only the initial round, which sets the first paths
	// and instances (paper 6.2's reactive-only baseline).
	PeriodicRounds() bool
	// Reactive: local controllers scale out on overload between rounds.
	Reactive() bool
	// Description says what the strategy does, in one line.
	Description() string
}

type spec struct {
	name, desc         string
	periodic, reactive bool
}

func (s spec) Name() string         { return s.name }
func (s spec) PeriodicRounds() bool { return s.periodic }
func (s spec) Reactive() bool       { return s.reactive }
func (s spec) Description() string  { return s.desc }
func (s spec) String() string       { return s.name }

// The strategies of paper 6.2.
var (
	// Hybrid: proactive rounds every interval and reactive scale-out between them (ScalIMS).
	Hybrid Strategy = spec{"hybrid", "proactive rounds + reactive scale-out (the paper)", true, true}
	// Proactive: rounds only; local controllers do not react to overload.
	Proactive Strategy = spec{"proactive", "proactive rounds only", true, false}
	// Reactive: one initial round sets paths and instances, then only reactive scale-out.
	Reactive Strategy = spec{"reactive", "reactive scale-out only (after one initial round)", false, true}
)

// Default is the strategy of an empty name.
var Default = Hybrid

// All returns every strategy, Default first.
func All() []Strategy { return []Strategy{Hybrid, Proactive, Reactive} }

// Names returns the names of All, in its order.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name())
	}
	return out
}

// Parse returns the strategy of a name ("" is Default).
func Parse(name string) (Strategy, error) {
	if name == "" {
		return Default, nil
	}
	for _, s := range All() {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("strategy: %q is not one of %s", name, strings.Join(Names(), ", "))
}
