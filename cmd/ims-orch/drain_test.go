package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ims-orch/ims-orch/api"
)

// runDrainOrGet runs the CLI with the drain command's flags reset too
// (runClient resets the other client commands).
func runDrainOrGet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	drainCmd.Flags().VisitAll(func(f *pflag.Flag) {
		_ = f.Value.Set(f.DefValue)
		f.Changed = false
	})
	return runClient(t, "", args...)
}

func TestDrainCommand(t *testing.T) {
	_, url := apiServer(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "drain", args: []string{"drain", "dc2"}, want: "operation op-1: PROCESSING drain dc2"},
		{name: "undo", args: []string{"drain", "dc2", "--undo"}, want: "operation op-2: COMPLETED undrain dc2"},
		{name: "undo again: not drained", args: []string{"drain", "dc2", "--undo"}, code: 1},
		{name: "unknown datacenter", args: []string{"drain", "dc99"}, code: 1},
		{name: "no datacenter", args: []string{"drain"}, code: 2},
		{name: "bad output", args: []string{"drain", "dc3", "-o", "xml"}, code: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runDrainOrGet(t, append(tc.args, "--server", url)...)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d\n%s", got, err, tc.code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
	out, err := runDrainOrGet(t, "drain", "dc4", "-o", "json", "--server", url)
	if err != nil || !strings.Contains(out, `"kind": "DRAIN"`) {
		t.Fatalf("drain json: %v\n%s", err, out)
	}
	out, err = runDrainOrGet(t, "drain", "dc4", "--undo", "-o", "json", "--server", url)
	var op api.Operation
	if err != nil || json.Unmarshal([]byte(out), &op) != nil || op.Kind != api.OpUndrain || op.Drain.DC != "dc4" {
		t.Fatalf("undrain json: %v\n%s", err, out)
	}
}

// get decisions follows the cursor: all of a history larger than a page,
// or --limit of them with the cursor to resume from.
func TestGetDecisionsFollowsCursor(t *testing.T) {
	b, url := apiServer(t) // one decision recorded (seq 1)
	const n = 2*api.MaxDecisionsLimit + 50
	ds := make([]api.Decision, n)
	for i := range ds {
		ds[i] = api.Decision{Round: 43, Kind: api.DecisionReactive, DC: "dc1", VNF: "ids", Delta: 1, Reason: fmt.Sprintf("r%d", i)}
	}
	b.AddDecisions(ds...)
	decode := func(t *testing.T, out string) api.DecisionList {
		t.Helper()
		var l api.DecisionList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("json: %v\n%.300s", err, out)
		}
		for i := 1; i < len(l.Decisions); i++ {
			if l.Decisions[i].Seq != l.Decisions[i-1].Seq+1 {
				t.Fatalf("decision %d: seq %d after %d (lost or repeated)", i, l.Decisions[i].Seq, l.Decisions[i-1].Seq)
			}
		}
		return l
	}
	cases := []struct {
		name       string
		args       []string
		n          int
		next       int64
		more       bool
		code       int
		tableWants string
	}{
		{name: "all", args: []string{"get", "decisions"}, n: n + 1, next: n + 1},
		{name: "limit over two pages", args: []string{"get", "decisions", "--limit", "1200"}, n: 1200, next: 1200, more: true,
			tableWants: "(more decisions follow: --after 1200)"},
		{name: "after a cursor", args: []string{"get", "decisions", "--after", "1200"}, n: n + 1 - 1200, next: n + 1},
		{name: "since", args: []string{"get", "decisions", "--since", "43"}, n: n, next: n + 1},
		{name: "negative limit", args: []string{"get", "decisions", "--limit", "-1"}, code: 2},
		{name: "cursor past the newest", args: []string{"get", "decisions", "--after", "99999"}, code: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runDrainOrGet(t, append(tc.args, "--server", url, "-o", "json")...)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
			if tc.code != 0 {
				return
			}
			l := decode(t, out)
			if len(l.Decisions) != tc.n || l.Next != tc.next || l.More != tc.more {
				t.Fatalf("%d decisions, next %d, more %v; want %d, %d, %v", len(l.Decisions), l.Next, l.More, tc.n, tc.next, tc.more)
			}
			if tc.tableWants != "" {
				out, err := runDrainOrGet(t, append(tc.args, "--server", url)...)
				if err != nil || !strings.Contains(out, tc.tableWants) || !strings.Contains(out, "SEQ") {
					t.Fatalf("table: %v, lacks %q", err, tc.tableWants)
				}
			}
		})
	}
}
