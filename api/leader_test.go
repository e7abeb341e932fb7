package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

// twoNodes starts a leader and a follower (two httptest servers on
// 127.0.0.1) whose backend refuses writes naming the leader.
func twoNodes(t *testing.T, mode api.LeaderMode) (leaderURL, followerURL string, lb, fb *apitest.Backend) {
	t.Helper()
	lb = apitest.Paper(now)
	leader := httptest.NewServer(newServer(t, lb, nil))
	t.Cleanup(leader.Close)
	fb = apitest.Paper(now)
	fb.SetNotLeader(&api.NotLeaderError{LeaderID: "node-1", LeaderAddr: leader.URL + "/"})
	follower := httptest.NewServer(newServer(t, fb, func(c *api.Config) { c.Leader = mode }))
	t.Cleanup(follower.Close)
	return leader.URL, follower.URL, lb, fb
}

func TestFollowerProxiesWrites(t *testing.T) {
	_, f, lb, fb := twoNodes(t, api.LeaderProxy)
	p := apitest.PaperPolicy()
	p.Tau = 20
	r := call(t, nil, "PUT", f+"/api/v1/policies/default", adminToken, "", p)
	if r.status != 200 {
		t.Fatalf("proxied PUT: %d %s", r.status, r.body)
	}
	var res api.PutResult
	r.decode(t, &res)
	if res.Outcome != api.OutcomeUpdated || lb.Writes() != 1 || fb.Writes() != 0 {
		t.Fatalf("result %+v; leader writes %d, follower writes %d", res, lb.Writes(), fb.Writes())
	}
	// The body reached the leader intact.
	var got api.Policy
	call(t, nil, "GET", f+"/api/v1/policies/default", readToken, "", nil).decode(t, &got)
	if got.Tau != 10 {
		t.Fatalf("the follower's own copy changed: τ %d", got.Tau)
	}
	lp, _ := lb.Policy(t.Context(), "default")
	if lp.Tau != 20 {
		t.Fatalf("leader's τ %d, want 20", lp.Tau)
	}
	// A POST without a body is proxied too.
	r = call(t, nil, "POST", f+"/api/v1/datacenters/dc1/drain", adminToken, "", nil)
	if r.status != 202 || lb.Writes() != 2 {
		t.Fatalf("proxied drain: %d %s", r.status, r.body)
	}
	// Auth is still checked on the follower: a read token never reaches the leader.
	r = call(t, nil, "PUT", f+"/api/v1/policies/default", readToken, "", p)
	if r.status != 403 || lb.Writes() != 2 {
		t.Fatalf("read token: %d, leader writes %d", r.status, lb.Writes())
	}
	// Reads are served by the follower itself.
	if r := call(t, nil, "GET", f+"/api/v1/state", readToken, "", nil); r.status != 200 {
		t.Fatalf("follower read: %d", r.status)
	}
}

func TestFollowerRedirects(t *testing.T) {
	l, f, lb, _ := twoNodes(t, api.LeaderRedirect)
	r := call(t, noRedirect, "PUT", f+"/api/v1/chains?x=1", adminToken, "", api.ChainList{Chains: apitest.PaperChains()})
	if r.status != http.StatusTemporaryRedirect {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if loc := r.header.Get("Location"); loc != l+"/api/v1/chains?x=1" {
		t.Fatalf("Location %q, want %q", loc, l+"/api/v1/chains?x=1")
	}
	if p := r.problem(t); p.Leader != l || r.header.Get(api.LeaderHeader) != l {
		t.Fatalf("leader %q / header %q, want %q", p.Leader, r.header.Get(api.LeaderHeader), l)
	}
	if lb.Writes() != 0 {
		t.Fatal("a redirect wrote to the leader")
	}
}

func TestFollowerRejectsWith421(t *testing.T) {
	l, f, _, _ := twoNodes(t, api.LeaderReject)
	r := call(t, nil, "DELETE", f+"/api/v1/policies/default", adminToken, "", nil)
	if r.status != http.StatusMisdirectedRequest || r.header.Get(api.LeaderHeader) != l || r.problem(t).Leader != l {
		t.Fatalf("status %d header %q body %s", r.status, r.header.Get(api.LeaderHeader), r.body)
	}
}

func TestProxyNeverLoops(t *testing.T) {
	// Two followers that each name the other as leader: a request is
	// forwarded once, then answered 421.
	a, b := apitest.Paper(now), apitest.Paper(now)
	sa := httptest.NewServer(newServer(t, a, nil))
	defer sa.Close()
	sb := httptest.NewServer(newServer(t, b, nil))
	defer sb.Close()
	a.SetNotLeader(&api.NotLeaderError{LeaderAddr: sb.URL})
	b.SetNotLeader(&api.NotLeaderError{LeaderAddr: sa.URL})
	r := call(t, nil, "PUT", sa.URL+"/api/v1/chains", adminToken, "", api.ChainList{Chains: apitest.PaperChains()})
	if r.status != http.StatusMisdirectedRequest || r.header.Get(api.LeaderHeader) != sa.URL {
		t.Fatalf("status %d leader %q: %s", r.status, r.header.Get(api.LeaderHeader), r.body)
	}
}

func TestNotLeaderWithoutLeader(t *testing.T) {
	cases := []struct {
		name string
		addr string
		want int
	}{
		{name: "no leader known", addr: "", want: 503},
		{name: "unusable leader address", addr: "10.0.0.1:8443", want: 503},
		{name: "leader unreachable", addr: "http://127.0.0.1:1", want: 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := apitest.Paper(now)
			b.SetNotLeader(&api.NotLeaderError{LeaderAddr: tc.addr})
			u := startHandler(t, newServer(t, b, nil))
			r := call(t, nil, "PUT", u+"/api/v1/chains", adminToken, "", api.ChainList{Chains: apitest.PaperChains()})
			if r.status != tc.want || r.header.Get("Retry-After") == "" {
				t.Fatalf("status %d (want %d), Retry-After %q", r.status, tc.want, r.header.Get("Retry-After"))
			}
			r.problem(t)
		})
	}
}
