package exactround

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/placement"
)

func TestParseSolution(t *testing.T) {
	sol, err := ParseSolution(strings.NewReader("Optimal - objective value 12.00000000\n      0 x0_1   1   0\n** 3 y2_0  2.0000001  1\n"))
	if err != nil || !sol.Optimal || sol.Objective != 12 || sol.Values["x0_1"] != 1 || sol.Values["y2_0"] != 2.0000001 {
		t.Fatalf("%+v, %v", sol, err)
	}
	sol, err = ParseSolution(strings.NewReader("Stopped on time - objective value 24.00000000\n 0 y0_0 1 1\n"))
	if err != nil || sol.Optimal || sol.Objective != 24 {
		t.Fatalf("stopped with a solution: %+v, %v", sol, err)
	}
	for in, want := range map[string]string{
		"":                                       "empty solution file",
		"Infeasible - objective value 0\n":       `solver status "Infeasible - objective value 0"`,
		"Stopped on time\n":                      "did not prove optimality",
		"Optimal - objective value 1\n 0 x0_0\n": "solution line 2: want index, name, value",
		"Optimal - objective value 1\n 0 x0_0 one 0\n": `solution line 2: value "one"`,
		"Optimal - objective value one\n":              "objective",
	} {
		if _, err := ParseSolution(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	if _, err := ParseSolution(strings.NewReader("Stopped on time\n")); !errors.Is(err, ErrNotOptimal) {
		t.Errorf("stopped without a solution: %v is not ErrNotOptimal", err)
	}
}

// FuzzParseSolution: the solver's output never panics the parser.
func FuzzParseSolution(f *testing.F) {
	f.Add([]byte("Optimal - objective value 12.00000000\n      0 x0_1   1   0\n"))
	f.Add([]byte("Stopped on time - objective value 3\n** 1 y0_0 1 0\n"))
	f.Add([]byte("Infeasible\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sol, err := ParseSolution(strings.NewReader(string(b)))
		if err == nil && sol == nil {
			t.Fatal("no solution and no error")
		}
	})
}

// A fake solver: Plan builds the decision from the values it returns, and
// refuses values that choose no path.
type fake struct{ vals map[string]float64 }

func (f fake) Solve(context.Context, string) (*Solution, error) {
	return &Solution{Values: f.vals, Optimal: true}, nil
}

func twoDC() *placement.Snapshot {
	s := &placement.Snapshot{N: 2, Delay: [][]float64{{0, 5}, {5, 0}}, DelayBound: 100,
		Stages: []placement.Stage{{Name: "fw", Capacity: 1000}},
		DP:     [][]placement.Provision{{{Working: 1}}, {{}}},
		PCSCF:  placement.CPVNF{Name: "p", Capacity: 10}, SCSCF: placement.CPVNF{Name: "s", Capacity: 10},
		PCSCFProv: make([]placement.Provision, 2), DPWorkload: map[placement.Pair]float64{{Entry: 0, Exit: 1}: 500}}
	return s
}

func TestPlanWithFakeSolver(t *testing.T) {
	s := twoDC()
	ip, err := placement.NewRoundIP(s, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ip.Vars != 2 || !strings.Contains(ip.LP, "one0:") || !strings.Contains(ip.LP, "cap0_0:") {
		t.Fatalf("%d vars, program:\n%s", ip.Vars, ip.LP)
	}
	// x0_1 is the path through DC 1 (candidates in DC order): it needs an instance there
	res, err := Plan(context.Background(), s, placement.Options{}, fake{map[string]float64{"x0_1": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Decision.Pairs[0]; p.Path[1] != 1 || p.Method != placement.MethodRound || res.Decision.DP[1][0].Created != 1 {
		t.Fatalf("pair %+v, DC 1 %+v", p, res.Decision.DP[1][0])
	}
	if _, err := Plan(context.Background(), s, placement.Options{}, fake{map[string]float64{}}); err == nil || !strings.Contains(err.Error(), "chose no path for pair 0→1") {
		t.Fatalf("no path chosen: %v", err)
	}
}

func TestSizeBound(t *testing.T) {
	s := twoDC()
	n := 40
	s.N = n
	s.Delay = make([][]float64, n)
	s.DP = make([][]placement.Provision, n)
	s.PCSCFProv = make([]placement.Provision, n)
	for i := range s.Delay {
		s.Delay[i] = make([]float64, n)
		s.DP[i] = make([]placement.Provision, 3)
		for j := range s.Delay[i] {
			if i != j {
				s.Delay[i][j] = 1
			}
			s.DPWorkload[placement.Pair{Entry: i, Exit: j}] = 100
		}
	}
	s.Stages = []placement.Stage{{Name: "a", Capacity: 1000}, {Name: "b", Capacity: 1000}, {Name: "c", Capacity: 1000}}
	_, err := placement.NewRoundIP(s, placement.Options{})
	var fe *placement.FieldError
	if !errors.As(err, &fe) || fe.Field != "options.exactRound" {
		t.Fatalf("a 40-DC round: %v, want a FieldError for options.exactRound", err)
	}
}

// With CBC installed (scripts/ci-cbc.sh; required under CI=true), the exact
// round of the two-DC snapshot keeps the pair on DC 0's spare instance.
func TestCBC(t *testing.T) {
	cbc, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err)
	}
	cbc.TimeLimit = 30 * time.Second
	res, err := Plan(context.Background(), twoDC(), placement.Options{}, cbc)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Optimal || res.Objective != 0 || res.Decision.Pairs[0].Path[1] != 0 {
		t.Fatalf("%+v, pair %+v", res, res.Decision.Pairs[0])
	}
}
