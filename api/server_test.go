package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

func TestAuth(t *testing.T) {
	ts, b := startPaper(t)
	dcs := api.DatacenterList{Datacenters: apitest.PaperDatacenters()}
	cases := []struct {
		name      string
		method    string
		path      string
		header    string // raw Authorization header ("" none)
		body      any
		want      int
		challenge string // expected in WWW-Authenticate
	}{
		{name: "read without token", method: "GET", path: "/api/v1/state", want: 401, challenge: `Bearer realm="ims-orch"`},
		{name: "read with unknown token", method: "GET", path: "/api/v1/state", header: "Bearer " + api.TokenPrefix + strings.Repeat("X", 43), want: 401, challenge: "invalid_token"},
		{name: "read with short token", method: "GET", path: "/api/v1/state", header: "Bearer abc", want: 401, challenge: "invalid_token"},
		{name: "basic auth is not bearer", method: "GET", path: "/api/v1/state", header: "Basic b3BzOnNlY3JldA==", want: 401},
		{name: "read token reads", method: "GET", path: "/api/v1/state", header: "Bearer " + readToken, want: 200},
		{name: "scheme is case-insensitive", method: "GET", path: "/api/v1/state", header: "bearer " + readToken, want: 200},
		{name: "admin token reads", method: "GET", path: "/api/v1/datacenters", header: "Bearer " + adminToken, want: 200},
		{name: "write without token", method: "PUT", path: "/api/v1/datacenters", body: dcs, want: 401},
		{name: "write with invalid token", method: "PUT", path: "/api/v1/datacenters", header: "Bearer " + readToken + "x", body: dcs, want: 401},
		{name: "write with read token", method: "PUT", path: "/api/v1/datacenters", header: "Bearer " + readToken, body: dcs, want: 403, challenge: "insufficient_scope"},
		{name: "delete with read token", method: "DELETE", path: "/api/v1/policies/default", header: "Bearer " + readToken, want: 403},
		{name: "scale with read token", method: "POST", path: "/api/v1/vnfs/ids/scale", header: "Bearer " + readToken,
			body: api.ScaleRequest{DC: "dc0", Type: api.ScaleOut, NumberOfSteps: 1}, want: 403},
		{name: "write with admin token", method: "PUT", path: "/api/v1/datacenters", header: "Bearer " + adminToken, body: dcs, want: 200},
		{name: "healthz needs no token", method: "GET", path: "/healthz", want: 200},
		{name: "readyz needs no token", method: "GET", path: "/readyz", want: 200},
		{name: "openapi needs no token", method: "GET", path: "/api/v1/openapi.json", want: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Writes()
			r := callRaw(t, tc.method, ts.URL+tc.path, tc.header, tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.want, r.body)
			}
			if tc.want >= 400 {
				r.problem(t)
				if b.Writes() != before {
					t.Fatalf("a refused request wrote to the backend")
				}
			}
			if tc.challenge != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), tc.challenge) {
				t.Fatalf("WWW-Authenticate %q does not contain %q", r.header.Get("WWW-Authenticate"), tc.challenge)
			}
		})
	}
}

// callRaw is call with a raw Authorization header.
func callRaw(t *testing.T, method, url, authz string, body any) reply {
	t.Helper()
	hc := &http.Client{Transport: authTransport{authz}}
	return call(t, hc, method, url, "", "", body)
}

type authTransport struct{ authz string }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.authz != "" {
		r.Header.Set("Authorization", a.authz)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestNewRefusesBadConfig(t *testing.T) {
	b := apitest.New(now)
	cases := []struct {
		name string
		cfg  api.Config
	}{
		{name: "no backend", cfg: api.Config{Tokens: testTokens(t)}},
		{name: "no tokens and not explicitly anonymous", cfg: api.Config{Backend: b}},
		{name: "unknown leader mode", cfg: api.Config{Backend: b, Tokens: testTokens(t), Leader: "bounce"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.New(tc.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestAllowUnauthenticated(t *testing.T) {
	b := apitest.Paper(now)
	s, err := api.New(api.Config{Backend: b, AllowUnauthenticated: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := startHandler(t, s)
	r := call(t, nil, "PUT", ts+"/api/v1/datacenters", "", "", api.DatacenterList{Datacenters: apitest.PaperDatacenters()})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
}

func TestBodies(t *testing.T) {
	ts, b := startPaper(t)
	big := `{"datacenters":[` + strings.Repeat(`{"name":"dc0","group":"g0"},`, 40000) + `{"name":"x","group":"g"}]}`
	cases := []struct {
		name      string
		method    string
		path      string
		ct        string
		body      any
		want      int
		field     string // the problem must name this field
		chunked   bool
		wantInErr string
	}{
		{name: "malformed JSON", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{"datacenters":[`, want: 400, field: "body"},
		{name: "syntax error", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{"datacenters":[}`, want: 400, field: "body", wantInErr: "not valid JSON"},
		{name: "unknown field", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{"datacenters":[],"bogus":1}`, want: 400, field: "bogus"},
		{name: "unknown nested field", method: "PUT", path: "/api/v1/vnf-types", ct: "application/json",
			body: `{"vnfTypes":[{"name":"a","plane":"dp","image":"i","flavor":"f","capacity":1,"thresholds":{"cpu":1,"mem":1,"pktRate":1,"disk":3}}]}`, want: 400, field: "disk"},
		{name: "wrong type", method: "PUT", path: "/api/v1/policies/p", ct: "application/json", body: `{"intervalSeconds":"fifty"}`, want: 400, field: "intervalSeconds", wantInErr: "an integer"},
		{name: "fraction for an integer", method: "PUT", path: "/api/v1/policies/p", ct: "application/json", body: `{"tau":1.5}`, want: 400, field: "tau"},
		{name: "number out of range", method: "PUT", path: "/api/v1/delays", ct: "application/json", body: `{"datacenters":["dc0"],"delaysMs":[[1e999]]}`, want: 400},
		{name: "trailing data", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{"datacenters":[]} {}`, want: 400, field: "body"},
		{name: "array instead of object", method: "PUT", path: "/api/v1/chains", ct: "application/json", body: `[]`, want: 400, field: "body"},
		{name: "empty body", method: "PUT", path: "/api/v1/chains", ct: "application/json", body: ``, want: 400, field: "body"},
		{name: "oversized with length", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: big, want: 413, field: "body"},
		{name: "oversized chunked", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: big, want: 413, field: "body", chunked: true},
		{name: "text/plain", method: "PUT", path: "/api/v1/datacenters", ct: "text/plain", body: `{"datacenters":[]}`, want: 415, field: "Content-Type"},
		{name: "no content type", method: "PUT", path: "/api/v1/datacenters", body: `{"datacenters":[]}`, want: 415, field: "Content-Type"},
		{name: "json with charset", method: "PUT", path: "/api/v1/datacenters", ct: "application/json; charset=utf-8",
			body: `{"datacenters":[{"name":"dc0","group":"g0"}]}`, want: 200},
		{name: "missing list", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{}`, want: 400, field: "datacenters"},
		{name: "invalid name", method: "PUT", path: "/api/v1/datacenters", ct: "application/json", body: `{"datacenters":[{"name":"-x","group":"g0"}]}`, want: 400, field: "datacenters[0].name"},
		{name: "policy name differs from URL", method: "PUT", path: "/api/v1/policies/a", ct: "application/json",
			body: `{"name":"b","intervalSeconds":50,"tau":10,"delayBoundMs":250,"predictor":"ar1","strategy":"hybrid"}`, want: 400, field: "name"},
		{name: "policy several invalid fields", method: "PUT", path: "/api/v1/policies/a", ct: "application/json",
			body: `{"intervalSeconds":0,"tau":10,"delayBoundMs":250,"predictor":"ar1","strategy":"greedy"}`, want: 400, wantInErr: "strategy"},
		{name: "policy unknown predictor model", method: "PUT", path: "/api/v1/policies/a", ct: "application/json",
			body: `{"intervalSeconds":50,"tau":10,"delayBoundMs":250,"predictor":"crystal-ball","strategy":"hybrid"}`, want: 422, field: "predictor"},
		{name: "policy limit on unknown DC", method: "PUT", path: "/api/v1/policies/a", ct: "application/json",
			body: `{"intervalSeconds":50,"tau":10,"delayBoundMs":250,"predictor":"ar1","strategy":"hybrid","limits":[{"dc":"dc99","vnf":"ids","min":0,"max":3}]}`, want: 422, field: "limits[0].dc"},
		{name: "delays naming an unknown DC", method: "PUT", path: "/api/v1/delays", ct: "application/json",
			body: `{"datacenters":["dc0","mars"],"delaysMs":[[0,1],[1,0]]}`, want: 422, field: "datacenters[1]"},
		{name: "chain with unknown VNF", method: "PUT", path: "/api/v1/chains", ct: "application/json",
			body: `{"chains":[{"name":"dp","stages":["firewall","dpi"]}]}`, want: 422, field: "chains[0].stages[1]"},
		{name: "bad dryRun flag", method: "PUT", path: "/api/v1/policies/a?dryRun=maybe", ct: "application/json", body: `{}`, want: 400, field: "dryRun"},
		{name: "bad name in URL", method: "GET", path: "/api/v1/policies/..", want: 400, field: "name"},
		{name: "bad operation id", method: "GET", path: "/api/v1/operations/%2e%2e%2fx", want: 400, field: "id"},
		{name: "unknown route", method: "GET", path: "/api/v1/nothing", want: 404},
		{name: "method not allowed", method: "PATCH", path: "/api/v1/state", want: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Writes()
			var body any = tc.body
			if tc.chunked {
				body = chunkedBody(tc.body.(string))
			}
			r := call(t, nil, tc.method, ts.URL+tc.path, adminToken, tc.ct, body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.want, r.body)
			}
			if tc.want < 400 {
				return
			}
			if b.Writes() != before {
				t.Fatal("a refused request wrote to the backend")
			}
			p := r.problem(t)
			if tc.field != "" && p.Field != tc.field {
				t.Fatalf("problem field %q, want %q: %+v", p.Field, tc.field, p)
			}
			if tc.wantInErr != "" && !strings.Contains(string(r.body), tc.wantInErr) {
				t.Fatalf("problem %s does not mention %q", r.body, tc.wantInErr)
			}
			if p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("problem lacks type, title or detail: %+v", p)
			}
		})
	}
}

// chunkedBody hides the length so the client sends a chunked body.
func chunkedBody(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }

func TestPolicyLifecycle(t *testing.T) {
	ts, b := startPaper(t)
	url := ts.URL + "/api/v1/policies/burst"
	p := api.Policy{IntervalSeconds: 50, Tau: 10, DelayBoundMs: 250, Predictor: "holt+q90", Strategy: strategy.Hybrid.Name(),
		Limits: []api.Limit{{DC: "dc1", VNF: "ids", Min: 4, Max: 6}}}

	// Dry run of a new policy: the decision the limit implies, nothing committed.
	before := b.Writes()
	r := call(t, nil, "PUT", url+"?dryRun=true", adminToken, "", p)
	if r.status != 200 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	var dry api.DryRunResult
	r.decode(t, &dry)
	if !dry.DryRun || len(dry.Decisions) != 1 || dry.Decisions[0].Delta != 2 || dry.Decisions[0].DC != "dc1" {
		t.Fatalf("dry run result %+v, want one +2 decision for ids in dc1 (2 working, min 4)", dry)
	}
	if b.Writes() != before {
		t.Fatal("dry run committed")
	}
	if r := call(t, nil, "GET", url, readToken, "", nil); r.status != 404 {
		t.Fatalf("dry run created the policy: %d", r.status)
	}

	// Create.
	r = call(t, nil, "PUT", url, adminToken, "", p)
	if r.status != 201 || r.header.Get("Location") != "/api/v1/policies/burst" {
		t.Fatalf("create: %d %v %s", r.status, r.header, r.body)
	}
	var res api.PutResult
	r.decode(t, &res)
	if res.Outcome != api.OutcomeCreated || len(res.Changes) == 0 {
		t.Fatalf("create result %+v", res)
	}

	// Same again: unchanged.
	r = call(t, nil, "PUT", url, adminToken, "", p)
	res = api.PutResult{}
	r.decode(t, &res)
	if r.status != 200 || res.Outcome != api.OutcomeUnchanged || len(res.Changes) != 0 {
		t.Fatalf("repeat: %d %+v", r.status, res)
	}

	// Change τ and a limit: both reported.
	p.Tau = 12
	p.Limits[0].Max = 8
	r = call(t, nil, "PUT", url, adminToken, "", p)
	res = api.PutResult{}
	r.decode(t, &res)
	want := []api.Change{{Path: "limits[0].max", From: 6.0, To: 8.0}, {Path: "tau", From: 10.0, To: 12.0}}
	if r.status != 200 || res.Outcome != api.OutcomeUpdated || fmt.Sprint(res.Changes) != fmt.Sprint(want) {
		t.Fatalf("update: %d %+v, want changes %v", r.status, res, want)
	}

	var got api.Policy
	call(t, nil, "GET", url, readToken, "", nil).decode(t, &got)
	if got.Name != "burst" || got.Tau != 12 {
		t.Fatalf("GET after update: %+v", got)
	}
	var list api.PolicyList
	call(t, nil, "GET", ts.URL+"/api/v1/policies", readToken, "", nil).decode(t, &list)
	if len(list.Policies) != 2 || list.Policies[0].Name != "burst" || list.Policies[1].Name != "default" {
		t.Fatalf("list: %+v", list)
	}

	if r := call(t, nil, "DELETE", url, adminToken, "", nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r = call(t, nil, "DELETE", url, adminToken, "", nil)
	if r.status != 404 {
		t.Fatalf("second delete: %d", r.status)
	}
	r.problem(t)
}

func TestScaleAndDrain(t *testing.T) {
	ts, _ := startPaper(t)
	out := api.ScaleRequest{DC: "dc3", Type: api.ScaleOut, NumberOfSteps: 2}
	r := call(t, nil, "POST", ts.URL+"/api/v1/vnfs/ids/scale", adminToken, "", out)
	if r.status != 202 {
		t.Fatalf("scale out: %d %s", r.status, r.body)
	}
	var op api.Operation
	r.decode(t, &op)
	if r.header.Get("Location") != "/api/v1/operations/"+op.ID || op.Kind != api.OpScale || op.Scale.VNF != "ids" {
		t.Fatalf("operation %+v, Location %q", op, r.header.Get("Location"))
	}
	var got api.Operation
	call(t, nil, "GET", ts.URL+"/api/v1/operations/"+op.ID, readToken, "", nil).decode(t, &got)
	if got.State != api.OpCompleted {
		t.Fatalf("operation state %q", got.State)
	}
	var st api.State
	call(t, nil, "GET", ts.URL+"/api/v1/state", readToken, "", nil).decode(t, &st)
	booting := 0
	for _, in := range st.Instances {
		if in.DC == "dc3" && in.VNF == "ids" && in.State == "booting" {
			booting++
		}
	}
	if booting != 2 {
		t.Fatalf("%d booting ids in dc3, want 2", booting)
	}
	var ds api.DecisionList
	call(t, nil, "GET", ts.URL+"/api/v1/decisions?since=42", readToken, "", nil).decode(t, &ds)
	last := ds.Decisions[len(ds.Decisions)-1]
	if last.Kind != api.DecisionManual || last.Delta != 2 || last.Reason == "" || last.Detail["operation"] != op.ID {
		t.Fatalf("last decision %+v", last)
	}

	cases := []struct {
		name  string
		path  string
		body  any
		want  int
		field string
	}{
		{name: "scale in more than working", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc0", Type: api.ScaleIn, NumberOfSteps: 5}, want: 409},
		{name: "unknown datacenter", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc9", Type: api.ScaleOut, NumberOfSteps: 1}, want: 404},
		{name: "unknown VNF", path: "/api/v1/vnfs/dpi/scale", body: api.ScaleRequest{DC: "dc0", Type: api.ScaleOut, NumberOfSteps: 1}, want: 404},
		{name: "VNF differs from URL", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc0", VNF: "firewall", Type: api.ScaleOut, NumberOfSteps: 1}, want: 400, field: "vnf"},
		{name: "zero steps", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc0", Type: api.ScaleOut}, want: 400, field: "numberOfSteps"},
		{name: "bad type", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc0", Type: "SCALE_UP", NumberOfSteps: 1}, want: 400, field: "type"},
		{name: "scale in", path: "/api/v1/vnfs/ids/scale", body: api.ScaleRequest{DC: "dc0", Type: api.ScaleIn, NumberOfSteps: 1}, want: 202},
		{name: "drain without body", path: "/api/v1/datacenters/dc2/drain", want: 202},
		{name: "drain with body", path: "/api/v1/datacenters/dc4/drain", body: api.DrainRequest{DC: "dc4"}, want: 202},
		{name: "drain body names another DC", path: "/api/v1/datacenters/dc4/drain", body: api.DrainRequest{DC: "dc5"}, want: 400, field: "dc"},
		{name: "drain unknown DC", path: "/api/v1/datacenters/dc42/drain", want: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, nil, "POST", ts.URL+tc.path, adminToken, "", tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want >= 400 {
				if p := r.problem(t); tc.field != "" && p.Field != tc.field {
					t.Fatalf("field %q, want %q", p.Field, tc.field)
				}
			}
		})
	}
	call(t, nil, "GET", ts.URL+"/api/v1/state", readToken, "", nil).decode(t, &st)
	for _, in := range st.Instances {
		if (in.DC == "dc2") != (in.State == "draining") && in.DC != "dc4" {
			t.Fatalf("instance %+v: drained DC dc2 and only it must be draining", in)
		}
	}
	if r := call(t, nil, "GET", ts.URL+"/api/v1/operations/op-99", readToken, "", nil); r.status != 404 {
		t.Fatalf("unknown operation: %d", r.status)
	}
}

func TestDecisionsQuery(t *testing.T) {
	ts, b := startPaper(t)
	for round := int64(43); round < 53; round++ {
		b.AddDecisions(api.Decision{Round: round, At: epoch, Kind: api.DecisionReactive, DC: "dc0", VNF: "firewall",
			Delta: 1, Reason: "3 of 4 instances overloaded for 5 s"})
	}
	cases := []struct {
		name   string
		query  string
		want   int
		rounds []int64
		field  string
	}{
		{name: "default", query: "", want: 200, rounds: []int64{42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52}},
		{name: "since", query: "?since=50", want: 200, rounds: []int64{50, 51, 52}},
		{name: "since and limit", query: "?since=44&limit=2", want: 200, rounds: []int64{44, 45}},
		{name: "since past the end", query: "?since=1000", want: 200, rounds: []int64{}},
		{name: "negative since", query: "?since=-1", want: 400, field: "since"},
		{name: "text since", query: "?since=yesterday", want: 400, field: "since"},
		{name: "zero limit", query: "?limit=0", want: 400, field: "limit"},
		{name: "huge limit", query: "?limit=1000000", want: 400, field: "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, nil, "GET", ts.URL+"/api/v1/decisions"+tc.query, readToken, "", nil)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want != 200 {
				if p := r.problem(t); p.Field != tc.field {
					t.Fatalf("field %q, want %q", p.Field, tc.field)
				}
				return
			}
			var l api.DecisionList
			r.decode(t, &l)
			got := []int64{}
			for _, d := range l.Decisions {
				got = append(got, d.Round)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.rounds) {
				t.Fatalf("rounds %v, want %v", got, tc.rounds)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	ts, b := startPaper(t)
	if r := call(t, nil, "GET", ts.URL+"/readyz", "", "", nil); r.status != 200 {
		t.Fatalf("ready: %d", r.status)
	}
	b.SetReady(errors.New("raft: no leader"))
	r := call(t, nil, "GET", ts.URL+"/readyz", "", "", nil)
	if r.status != 503 || !strings.Contains(r.problem(t).Detail, "raft: no leader") || r.header.Get("Retry-After") == "" {
		t.Fatalf("not ready: %d %s", r.status, r.body)
	}
	if r := call(t, nil, "GET", ts.URL+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("healthz follows readiness: %d", r.status)
	}
}

// failing is a Backend whose reads fail with err.
type failing struct {
	*apitest.Backend
	err error
}

func (f failing) State(context.Context) (api.State, error) { return api.State{}, f.err }

func TestBackendErrorsMapToStatus(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		want       int
		hideDetail bool
	}{
		{name: "not found", err: fmt.Errorf("state: %w", api.ErrNotFound), want: 404},
		{name: "conflict", err: fmt.Errorf("busy: %w", api.ErrConflict), want: 409},
		{name: "no leader", err: api.ErrNoLeader, want: 503},
		{name: "validation", err: &api.ValidationError{Errors: []api.FieldError{{Field: "x", Reason: "bad"}}}, want: 422},
		{name: "anything else is a 500 without the cause", err: errors.New("disk on fire: /var/lib/secret"), want: 500, hideDetail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startHandler(t, newServer(t, failing{apitest.New(now), tc.err}, nil))
			r := call(t, nil, "GET", ts+"/api/v1/state", readToken, "", nil)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			p := r.problem(t)
			if tc.hideDetail == strings.Contains(p.Detail, tc.err.Error()) {
				t.Fatalf("detail %q (hide cause: %v)", p.Detail, tc.hideDetail)
			}
		})
	}
}

// unversioned hides the in-memory backend's StateVersion.
type unversioned struct{ api.Backend }

func TestStateETagAndCache(t *testing.T) {
	ts, b := startPaper(t)
	url := ts.URL + "/api/v1/state"
	r1 := call(t, nil, "GET", url, readToken, "", nil)
	etag := r1.header.Get("ETag")
	if r1.status != 200 || etag == "" {
		t.Fatalf("first GET: %d, ETag %q", r1.status, etag)
	}
	// Same version: 304 for a poller that sends the ETag back, 200 with the
	// same body for one that does not.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	req.Header.Set("If-None-Match", `"other", `+etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if r := call(t, nil, "GET", url, readToken, "", nil); string(r.body) != string(r1.body) {
		t.Fatal("cached body differs")
	}
	// A change of state invalidates the cache.
	if r := call(t, nil, "POST", ts.URL+"/api/v1/vnfs/ids/scale", adminToken, "", api.ScaleRequest{DC: "dc0", Type: api.ScaleOut, NumberOfSteps: 1}); r.status != 202 {
		t.Fatalf("scale: %d", r.status)
	}
	r2 := call(t, nil, "GET", url, readToken, "", nil)
	var st1, st2 api.State
	r1.decode(t, &st1)
	r2.decode(t, &st2)
	if r2.header.Get("ETag") == etag || len(st2.Instances) != len(st1.Instances)+1 {
		t.Fatalf("after a change: ETag %q (was %q), %d instances (was %d)", r2.header.Get("ETag"), etag, len(st2.Instances), len(st1.Instances))
	}
	b.SetState(api.State{Interval: 7})
	var st3 api.State
	call(t, nil, "GET", url, readToken, "", nil).decode(t, &st3)
	if st3.Interval != 7 || st3.Instances == nil || st3.Paths == nil || st3.Predictions == nil {
		t.Fatalf("after SetState: %+v (lists must be [] not null)", st3)
	}

	// A backend without versions: no ETag, fresh state every time.
	u := startHandler(t, newServer(t, unversioned{b}, nil))
	r := call(t, nil, "GET", u+"/api/v1/state", readToken, "", nil)
	if r.status != 200 || r.header.Get("ETag") != "" {
		t.Fatalf("unversioned: %d ETag %q", r.status, r.header.Get("ETag"))
	}
	b.SetState(api.State{Interval: 8})
	var st4 api.State
	call(t, nil, "GET", u+"/api/v1/state", readToken, "", nil).decode(t, &st4)
	if st4.Interval != 8 {
		t.Fatalf("unversioned state %d", st4.Interval)
	}
}
