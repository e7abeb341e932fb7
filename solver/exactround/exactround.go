// Package exactround (an adapter outside the pure placement package) solves a round's whole-round integer program
// (placement.RoundIP) with a MILP solver run as a process: CBC (Debian
// package coinor-cbc, installed by scripts/ci-cbc.sh). It owns the process and
// the solver's file formats; the program itself is built by the pure package
// placement. Tests compare the joint improvement phase with it, and
// `ims-orch plan --exact-round` plans small scenarios with it.
package exactround

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/placement"
)

// Solver solves a MILP given in the CPLEX LP format.
type Solver interface {
	Solve(ctx context.Context, lp string) (*Solution, error)
}

// Solution is what a solver found: the values of the variables (those it
// omits are 0), whether it proved them optimal and, when it did not, the
// lower bound it proved on the objective.
type Solution struct {
	Values    map[string]float64
	Optimal   bool
	Objective float64
	Bound     float64
}

// ErrNotOptimal: the solver stopped (time limit) without a solution.
var ErrNotOptimal = errors.New("exact round: the solver did not prove optimality")

// CBC runs the COIN-OR CBC binary.
type CBC struct {
	// Path of the cbc binary ("" : cbc on PATH).
	Path string
	// TimeLimit bounds one solve (0: 60 s), passed to cbc as `sec`.
	TimeLimit time.Duration
	// Threads for cbc (0: 1).
	Threads int
	// MaxNodes bounds the branch-and-bound nodes (0: no bound). Unlike the
	// time limit it stops at the same point on every machine, so tests
	// that compare with the bound are deterministic.
	MaxNodes int
}

// Find returns a CBC solver when the binary is installed.
func Find() (*CBC, error) {
	p, err := exec.LookPath("cbc")
	if err != nil {
		return nil, fmt.Errorf("exact round: the CBC solver (cbc) is not installed: run scripts/ci-cbc.sh (Debian package coinor-cbc): %w", err)
	}
	return &CBC{Path: p}, nil
}

// Solve writes lp to a temporary directory, runs cbc on it and reads the
// solution file. TimeLimit is CPU time (cbc's sec); the process is killed
// 10 × TimeLimit of wall-clock time later at the latest.
func (c *CBC) Solve(ctx context.Context, lp string) (*Solution, error) {
	bin := c.Path
	if bin == "" {
		bin = "cbc"
	}
	limit := c.TimeLimit
	if limit <= 0 {
		limit = 60 * time.Second
	}
	threads := max(1, c.Threads)
	dir, err := os.MkdirTemp("", "ims-orch-exactround-")
	if err != nil {
		return nil, fmt.Errorf("exact round: %w", err)
	}
	defer os.RemoveAll(dir)
	model, solFile := filepath.Join(dir, "round.lp"), filepath.Join(dir, "round.sol")
	if err := os.WriteFile(model, []byte(lp), 0o600); err != nil {
		return nil, fmt.Errorf("exact round: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*limit+30*time.Second)
	defer cancel()
	args := []string{model, "sec", strconv.Itoa(int(limit.Seconds() + 0.5)), "threads", strconv.Itoa(threads), "ratio", "0", "allow", "0"}
	if c.MaxNodes > 0 {
		args = append(args, "maxNodes", strconv.Itoa(c.MaxNodes))
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "solve", "solu", solFile)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("exact round: cbc failed: %w: %s", err, tail(out))
	}
	f, err := os.Open(solFile)
	if err != nil {
		return nil, fmt.Errorf("exact round: cbc wrote no solution: %w: %s", err, tail(out))
	}
	defer f.Close()
	sol, err := ParseSolution(f)
	if err != nil {
		return nil, err
	}
	sol.Bound = sol.Objective
	if !sol.Optimal {
		sol.Bound = lowerBound(string(out), sol.Objective)
	}
	return sol, nil
}

// lowerBound reads cbc's "Lower bound:" line (def when absent).
func lowerBound(out string, def float64) float64 {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Lower bound:"); ok {
			if b, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return b
			}
		}
	}
	return def
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// ParseSolution reads a CBC solution file: a status line ("Optimal -
// objective value 12"), then one line per non-zero variable: index, name,
// value, reduced cost. A solver stopped on a limit with a solution gives it
// (Optimal false); any other status than Optimal is an error (ErrNotOptimal
// when it stopped without a solution).
func ParseSolution(r io.Reader) (*Solution, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, errors.New("exact round: empty solution file")
	}
	status := strings.TrimSpace(sc.Text())
	sol := &Solution{Values: map[string]float64{}}
	switch {
	case strings.HasPrefix(status, "Optimal"):
		sol.Optimal = true
	case strings.HasPrefix(status, "Stopped") && strings.Contains(status, "objective value"):
	case strings.HasPrefix(status, "Stopped"):
		return nil, fmt.Errorf("%w: %s", ErrNotOptimal, status)
	default:
		return nil, fmt.Errorf("exact round: solver status %q", status)
	}
	if i := strings.LastIndex(status, "objective value"); i >= 0 {
		v, err := strconv.ParseFloat(strings.TrimSpace(status[i+len("objective value"):]), 64)
		if err != nil {
			return nil, fmt.Errorf("exact round: status line %q: objective: %w", status, err)
		}
		sol.Objective = v
	}
	vals := sol.Values
	for n := 2; sc.Scan(); n++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if fs[0] == "**" { // cbc marks infeasibilities of a column
			fs = fs[1:]
		}
		if len(fs) < 3 {
			return nil, fmt.Errorf("exact round: solution line %d: want index, name, value, got %q", n, sc.Text())
		}
		v, err := strconv.ParseFloat(fs[2], 64)
		if err != nil {
			return nil, fmt.Errorf("exact round: solution line %d: value %q: %w", n, fs[2], err)
		}
		vals[fs[1]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exact round: %w", err)
	}
	return sol, nil
}

// Result is an exact round: its decision and what the solver proved.
type Result struct {
	Decision *placement.Decision
	// Optimal: the solver proved the decision optimal; else it stopped on
	// its time limit and Bound is the least objective any round can have.
	Optimal bool
	// Objective and Bound are in the program's units: instances added (with
	// IgnoreBuffer), else created·M + added (placement.RoundIP).
	Objective, Bound float64
}

// Plan plans the round s exactly: the whole-round program solved by solver.
func Plan(ctx context.Context, s *placement.Snapshot, opt placement.Options, solver Solver) (*Result, error) {
	ip, err := placement.NewRoundIP(s, opt)
	if err != nil {
		return nil, err
	}
	sol, err := solver.Solve(ctx, ip.LP)
	if err != nil {
		return nil, err
	}
	d, err := ip.Decision(sol.Values)
	if err != nil {
		return nil, err
	}
	return &Result{Decision: d, Optimal: sol.Optimal, Objective: sol.Objective, Bound: sol.Bound}, nil
}
