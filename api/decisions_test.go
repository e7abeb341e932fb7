package api_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

// pageAll follows the cursor of GET /decisions from after=0 with the given
// limit and returns every decision seen and the number of pages.
func pageAll(t *testing.T, base, query string, limit int) ([]api.Decision, int) {
	t.Helper()
	var all []api.Decision
	after := int64(0)
	for pages := 1; pages < 1000; pages++ {
		r := call(t, nil, "GET", fmt.Sprintf("%s/api/v1/decisions?%safter=%d&limit=%d", base, query, after, limit), readToken, "", nil)
		if r.status != 200 {
			t.Fatalf("page %d: status %d: %s", pages, r.status, r.body)
		}
		var l api.DecisionList
		r.decode(t, &l)
		if len(l.Decisions) > limit {
			t.Fatalf("page %d holds %d decisions, limit %d", pages, len(l.Decisions), limit)
		}
		if n := len(l.Decisions); n > 0 && l.Next != l.Decisions[n-1].Seq {
			t.Fatalf("page %d: next %d, last seq %d", pages, l.Next, l.Decisions[n-1].Seq)
		}
		all = append(all, l.Decisions...)
		if !l.More {
			return all, pages
		}
		if l.Next <= after {
			t.Fatalf("page %d: cursor did not advance (%d → %d)", pages, after, l.Next)
		}
		after = l.Next
	}
	t.Fatal("paging did not end")
	return nil, 0
}

// A round holding more decisions than the page limit is paged through
// completely: every decision once, none lost, in the order recorded. (With
// the former round-based paging a client could not get past such a round.)
func TestDecisionsPagingThroughOneBigRound(t *testing.T) {
	ts, b := startPaper(t) // the paper backend holds one decision of round 42
	const inRound = 25
	for i := range inRound {
		b.AddDecisions(api.Decision{Round: 43, At: epoch, Kind: api.DecisionReactive, DC: fmt.Sprintf("dc%d", i%8),
			VNF: "firewall", Delta: 1, Reason: fmt.Sprintf("reactive create %d", i)})
	}
	b.AddDecisions(api.Decision{Round: 44, At: epoch, Kind: api.DecisionProactive, DC: "dc0", VNF: "ids", Delta: -1, Reason: "round 44"})
	cases := []struct {
		name   string
		query  string
		limit  int
		want   int
		rounds []int64 // the rounds seen, deduplicated in order
		pages  int
	}{
		{name: "limit 4 over everything", limit: 4, want: 1 + inRound + 1, rounds: []int64{42, 43, 44}, pages: 7},
		{name: "limit 1", limit: 1, want: 1 + inRound + 1, rounds: []int64{42, 43, 44}, pages: 27},
		{name: "since the big round, limit 7", query: "since=43&", limit: 7, want: inRound + 1, rounds: []int64{43, 44}, pages: 4},
		{name: "one page", limit: 1000, want: 1 + inRound + 1, rounds: []int64{42, 43, 44}, pages: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, pages := pageAll(t, ts.URL, tc.query, tc.limit)
			if len(got) != tc.want || pages != tc.pages {
				t.Fatalf("%d decisions in %d pages, want %d in %d", len(got), pages, tc.want, tc.pages)
			}
			seen := map[int64]bool{}
			reasons := map[string]bool{}
			var rounds []int64
			for i, d := range got {
				if seen[d.Seq] || d.Seq < 1 || (i > 0 && d.Seq <= got[i-1].Seq) {
					t.Fatalf("decision %d: seq %d repeated or out of order", i, d.Seq)
				}
				seen[d.Seq] = true
				reasons[d.Reason] = true
				if len(rounds) == 0 || rounds[len(rounds)-1] != d.Round {
					rounds = append(rounds, d.Round)
				}
			}
			for i := range inRound {
				if !reasons[fmt.Sprintf("reactive create %d", i)] {
					t.Fatalf("decision %d of round 43 lost", i)
				}
			}
			if !slices.Equal(rounds, tc.rounds) {
				t.Fatalf("rounds %v, want %v", rounds, tc.rounds)
			}
		})
	}
	// a tailing client keeps its cursor: an empty page answers next = after
	r := call(t, nil, "GET", ts.URL+"/api/v1/decisions?after=27", readToken, "", nil)
	var l api.DecisionList
	r.decode(t, &l)
	if r.status != 200 || len(l.Decisions) != 0 || l.Next != 27 || l.More {
		t.Fatalf("tail at the newest: %d %s", r.status, r.body)
	}
	b.AddDecisions(api.Decision{Round: 45, At: epoch, Kind: api.DecisionManual, DC: "dc1", VNF: "ids", Delta: 1, Reason: "later"})
	call(t, nil, "GET", ts.URL+"/api/v1/decisions?after=27", readToken, "", nil).decode(t, &l)
	if len(l.Decisions) != 1 || l.Decisions[0].Reason != "later" || l.Next != 28 {
		t.Fatalf("tail after one more decision: %+v", l)
	}
}

func TestDecisionsBadCursor(t *testing.T) {
	ts, _ := startPaper(t) // newest seq: 1
	cases := []struct {
		name, query, field, reason string
	}{
		{name: "text", query: "after=abc", field: "after", reason: "cursor"},
		{name: "negative", query: "after=-3", field: "after", reason: "cursor"},
		{name: "fraction", query: "after=1.5", field: "after", reason: "cursor"},
		{name: "overflow", query: "after=99999999999999999999", field: "after", reason: "cursor"},
		{name: "past the newest decision", query: "after=2", field: "after", reason: "past the newest decision (1)"},
		{name: "bad limit with a good cursor", query: "after=1&limit=x", field: "limit", reason: "between 1 and 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, nil, "GET", ts.URL+"/api/v1/decisions?"+tc.query, readToken, "", nil)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			p := r.problem(t)
			if p.Field != tc.field || p.Type != api.ProblemBadRequest || !strings.Contains(p.Detail, tc.reason) {
				t.Fatalf("problem %+v: want field %q and %q in the detail", p, tc.field, tc.reason)
			}
		})
	}
}

// Following the cursor of PageDecisions from 0 returns exactly the
// decisions of rounds ≥ since, in history order, each once, whatever the
// rounds (repeated, out of order), the Seq gaps and the limit.
func TestPageDecisionsFollowsTheHistory(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 60).Draw(t, "n")
		hist := make([]api.Decision, n)
		seq := int64(0)
		for i := range hist {
			seq += rapid.Int64Range(1, 3).Draw(t, "gap") // trimmed histories and other writers leave gaps
			hist[i] = api.Decision{Seq: seq, Round: rapid.Int64Range(0, 5).Draw(t, "round"), Reason: strconv.Itoa(i)}
		}
		since := rapid.Int64Range(0, 6).Draw(t, "since")
		limit := rapid.IntRange(1, 8).Draw(t, "limit")
		var want []api.Decision
		for _, d := range hist {
			if d.Round >= since {
				want = append(want, d)
			}
		}
		var got []api.Decision
		after := int64(0)
		for pages := 0; ; pages++ {
			if pages > n+1 {
				t.Fatalf("more than %d pages", n+1)
			}
			p := api.PageDecisions(hist, api.DecisionQuery{Since: since, After: after, Limit: limit})
			if p.Newest != seq {
				t.Fatalf("newest %d, want %d", p.Newest, seq)
			}
			if len(p.Decisions) > limit || (p.More && len(p.Decisions) != limit) {
				t.Fatalf("page of %d (more %v) with limit %d", len(p.Decisions), p.More, limit)
			}
			got = append(got, p.Decisions...)
			if !p.More {
				break
			}
			after = p.Decisions[len(p.Decisions)-1].Seq
		}
		if len(got) != len(want) {
			t.Fatalf("%d decisions, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].Seq != want[i].Seq || got[i].Reason != want[i].Reason {
				t.Fatalf("decision %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// FuzzParseDecisionQuery: any query string either parses into a query
// within bounds that survives a round trip, or is refused naming since,
// after or limit with a reason. Never a panic.
func FuzzParseDecisionQuery(f *testing.F) {
	for _, s := range []string{"", "since=3&limit=2", "after=17", "after=-1", "after=abc", "limit=1001", "limit=0",
		"since=9223372036854775807&after=9223372036854775807&limit=1000", "after=%2B5", "since=1&since=x", "after=1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // partial values on error: the server sees those too
		q, fe := api.ParseDecisionQuery(v)
		if fe != nil {
			if fe.Field != "since" && fe.Field != "after" && fe.Field != "limit" || fe.Reason == "" {
				t.Fatalf("error %+v names no query parameter", fe)
			}
			return
		}
		if q.Since < 0 || q.After < 0 || q.Limit < 1 || q.Limit > api.MaxDecisionsLimit {
			t.Fatalf("out of bounds: %+v", q)
		}
		back := url.Values{"since": {strconv.FormatInt(q.Since, 10)}, "after": {strconv.FormatInt(q.After, 10)},
			"limit": {strconv.Itoa(q.Limit)}}
		if q2, fe := api.ParseDecisionQuery(back); fe != nil || q2 != q {
			t.Fatalf("round trip %+v → %+v (%v)", q, q2, fe)
		}
	})
}

// DELETE /datacenters/{dc}/drain on the real server over loopback: auth,
// unknown and undrained DCs, the operation, the state and the decisions.
func TestUndrain(t *testing.T) {
	ts, b := startPaper(t)
	del := func(dc, token string) reply {
		return call(t, nil, "DELETE", ts.URL+"/api/v1/datacenters/"+dc+"/drain", token, "", nil)
	}
	if r := call(t, nil, "POST", ts.URL+"/api/v1/datacenters/dc3/drain", adminToken, "", nil); r.status != 202 {
		t.Fatalf("drain: %d %s", r.status, r.body)
	}
	writes := b.Writes()
	cases := []struct {
		name, dc, token string
		want            int
		field           string
	}{
		{name: "no token", dc: "dc3", want: 401, field: "Authorization"},
		{name: "bad token", dc: "dc3", token: readToken + "x", want: 401, field: "Authorization"},
		{name: "read-only token", dc: "dc3", token: readToken, want: 403},
		{name: "unknown datacenter", dc: "dc42", token: adminToken, want: 404},
		{name: "datacenter not drained", dc: "dc2", token: adminToken, want: 404},
		{name: "bad name", dc: "-dc", token: adminToken, want: 400, field: "dc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := del(tc.dc, tc.token)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if p := r.problem(t); p.Field != tc.field {
				t.Fatalf("field %q, want %q", p.Field, tc.field)
			}
		})
	}
	if b.Writes() != writes {
		t.Fatal("a refused undrain wrote")
	}
	r := del("dc3", adminToken)
	if r.status != 202 {
		t.Fatalf("undrain: %d %s", r.status, r.body)
	}
	var op api.Operation
	r.decode(t, &op)
	if op.Kind != api.OpUndrain || op.Drain == nil || op.Drain.DC != "dc3" || op.State != api.OpCompleted ||
		r.header.Get("Location") != "/api/v1/operations/"+op.ID {
		t.Fatalf("operation %+v, Location %q", op, r.header.Get("Location"))
	}
	var got api.Operation
	call(t, nil, "GET", ts.URL+"/api/v1/operations/"+op.ID, readToken, "", nil).decode(t, &got)
	if got.ID != op.ID || got.Kind != api.OpUndrain {
		t.Fatalf("GET operation: %+v", got)
	}
	var st api.State
	call(t, nil, "GET", ts.URL+"/api/v1/state", readToken, "", nil).decode(t, &st)
	for _, in := range st.Instances {
		if in.State == "draining" {
			t.Fatalf("instance %+v still draining after the undrain", in)
		}
	}
	var l api.DecisionList
	call(t, nil, "GET", ts.URL+"/api/v1/decisions?limit=1000", readToken, "", nil).decode(t, &l)
	last := l.Decisions[len(l.Decisions)-1]
	if last.DC != "dc3" || last.Delta <= 0 || last.Detail["operation"] != op.ID {
		t.Fatalf("last decision %+v does not record the undrain", last)
	}
	if r := del("dc3", adminToken); r.status != 404 {
		t.Fatalf("second undrain: %d, want 404", r.status)
	}
}

// A follower proxies DELETE .../drain to the leader (no body, the same
// token) and relays the 202.
func TestUndrainThroughFollower(t *testing.T) {
	leaderBackend := apitest.Paper(now)
	leader := httptest.NewServer(newServer(t, leaderBackend, nil))
	t.Cleanup(leader.Close)
	fb := apitest.Paper(now)
	fb.SetNotLeader(&api.NotLeaderError{LeaderID: "n1", LeaderAddr: leader.URL})
	follower := startHandler(t, newServer(t, fb, nil))
	if r := call(t, nil, "POST", follower+"/api/v1/datacenters/dc5/drain", adminToken, "", nil); r.status != 202 {
		t.Fatalf("drain through the follower: %d %s", r.status, r.body)
	}
	r := call(t, nil, "DELETE", follower+"/api/v1/datacenters/dc5/drain", adminToken, "", nil)
	var op api.Operation
	r.decode(t, &op)
	if r.status != 202 || op.Kind != api.OpUndrain || leaderBackend.Writes() != 2 || fb.Writes() != 0 {
		t.Fatalf("undrain through the follower: %d %+v, leader writes %d, follower writes %d", r.status, op,
			leaderBackend.Writes(), fb.Writes())
	}
}
