package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/api/client"
)

// AllDecisions follows the cursor through a round larger than a page and
// stops at its limit, telling that more follow.
func TestClientAllDecisions(t *testing.T) {
	ctx := context.Background()
	b := apitest.Paper(now) // one decision of round 42 (seq 1)
	const big = 2*api.MaxDecisionsLimit + 10
	ds := make([]api.Decision, big)
	for i := range ds {
		ds[i] = api.Decision{Round: 43, At: epoch, Kind: api.DecisionReactive, DC: "dc0", VNF: "ids", Delta: 1, Reason: fmt.Sprint(i)}
	}
	b.AddDecisions(ds...)
	c := mustClient(t, serve(t, b, "").URL, readToken)
	cases := []struct {
		name      string
		q         api.DecisionQuery
		n         int
		firstSeq  int64
		next      int64
		more      bool
		firstPage int // DecisionsPage with the same query (-1: a 400, the limit is above one page)
	}{
		{name: "everything", q: api.DecisionQuery{}, n: big + 1, firstSeq: 1, next: big + 1, firstPage: api.DefaultDecisionsLimit},
		{name: "since the big round", q: api.DecisionQuery{Since: 43}, n: big, firstSeq: 2, next: big + 1, firstPage: api.DefaultDecisionsLimit},
		{name: "limit across pages", q: api.DecisionQuery{Limit: api.MaxDecisionsLimit + 5}, n: api.MaxDecisionsLimit + 5, firstSeq: 1,
			next: api.MaxDecisionsLimit + 5, more: true, firstPage: -1},
		{name: "after a cursor", q: api.DecisionQuery{After: big - 3}, n: 4, firstSeq: big - 2, next: big + 1, firstPage: 4},
		{name: "at the newest", q: api.DecisionQuery{After: big + 1}, n: 0, next: big + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := c.AllDecisions(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Decisions) != tc.n || l.Next != tc.next || l.More != tc.more {
				t.Fatalf("%d decisions, next %d, more %v; want %d, %d, %v", len(l.Decisions), l.Next, l.More, tc.n, tc.next, tc.more)
			}
			for i, d := range l.Decisions {
				if d.Seq != tc.firstSeq+int64(i) {
					t.Fatalf("decision %d has seq %d, want %d (one lost or repeated)", i, d.Seq, tc.firstSeq+int64(i))
				}
			}
			p, err := c.DecisionsPage(ctx, tc.q)
			if tc.firstPage < 0 {
				if !client.IsStatus(err, 400) {
					t.Fatalf("one page above the limit: %v, want a 400", err)
				}
				return
			}
			if err != nil || len(p.Decisions) != tc.firstPage {
				t.Fatalf("first page: %d decisions, %v; want %d", len(p.Decisions), err, tc.firstPage)
			}
		})
	}
	if _, err := c.AllDecisions(ctx, api.DecisionQuery{After: big + 2}); !client.IsStatus(err, 400) {
		t.Fatalf("cursor past the newest: %v, want a 400", err)
	}
}

// A server whose cursor does not advance must not make AllDecisions loop.
func TestClientAllDecisionsStuckCursor(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"decisions":[],"next":0,"more":true}`)
	}))
	t.Cleanup(ts.Close)
	_, err := mustClient(t, ts.URL, readToken).AllDecisions(context.Background(), api.DecisionQuery{})
	if err == nil || !strings.Contains(err.Error(), "did not advance") {
		t.Fatalf("stuck cursor: %v", err)
	}
}

func TestClientUndrain(t *testing.T) {
	ctx := context.Background()
	b := apitest.Paper(now)
	ts := serve(t, b, "")
	admin := mustClient(t, ts.URL, adminToken)
	if _, err := admin.Drain(ctx, "dc6"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		c      *client.Client
		dc     string
		status int
	}{
		{name: "no token", c: mustClient(t, ts.URL, ""), dc: "dc6", status: 401},
		{name: "read token", c: mustClient(t, ts.URL, readToken), dc: "dc6", status: 403},
		{name: "unknown datacenter", c: admin, dc: "dc9", status: 404},
		{name: "not drained", c: admin, dc: "dc5", status: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Undrain(ctx, tc.dc); !client.IsStatus(err, tc.status) {
				t.Fatalf("error %v, want status %d", err, tc.status)
			}
		})
	}
	op, err := admin.Undrain(ctx, "dc6")
	if err != nil || op.Kind != api.OpUndrain || op.Drain == nil || op.Drain.DC != "dc6" {
		t.Fatalf("Undrain: %+v %v", op, err)
	}
	// through a redirecting follower, keeping the token
	fb := apitest.Paper(now)
	fb.SetNotLeader(&api.NotLeaderError{LeaderID: "n1", LeaderAddr: ts.URL})
	follower := mustClient(t, serve(t, fb, api.LeaderRedirect).URL, adminToken)
	if _, err := follower.Drain(ctx, "dc6"); err != nil {
		t.Fatal(err)
	}
	if op, err := follower.Undrain(ctx, "dc6"); err != nil || op.Kind != api.OpUndrain {
		t.Fatalf("Undrain through a follower: %+v %v", op, err)
	}
}
