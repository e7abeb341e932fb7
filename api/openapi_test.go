package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

func loadDoc(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	rt, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, rt
}

func TestOpenAPIDocumentValid(t *testing.T) {
	loadDoc(t)
}

// TestOpenAPIStrategyEnum: the document's strategy enum is the strategies
// of controller/strategy, in their order.
func TestOpenAPIStrategyEnum(t *testing.T) {
	doc, _ := loadDoc(t)
	var got []string
	for _, v := range doc.Components.Schemas["Policy"].Value.Properties["strategy"].Value.Enum {
		got = append(got, fmt.Sprint(v))
	}
	if fmt.Sprint(got) != fmt.Sprint(strategy.Names()) {
		t.Fatalf("openapi.yaml Policy.strategy enum %v, controller/strategy %v", got, strategy.Names())
	}
}

// TestOpenAPIChainStagesBound: the document's bound on a chain's stages is
// the one the server validates (api.MaxStages = routing.MaxStages).
func TestOpenAPIChainStagesBound(t *testing.T) {
	doc, _ := loadDoc(t)
	st := doc.Components.Schemas["Chain"].Value.Properties["stages"].Value
	if st.MaxItems == nil || *st.MaxItems != uint64(api.MaxStages) {
		t.Fatalf("Chain.stages maxItems %v, api.MaxStages %d", st.MaxItems, api.MaxStages)
	}
}

// TestOpenAPIRoutesInSync fails when a handler is routed but not documented,
// or documented but not routed.
func TestOpenAPIRoutesInSync(t *testing.T) {
	doc, _ := loadDoc(t)
	s := newServer(t, apitest.New(now), nil)
	routed := map[string]bool{}
	err := chi.Walk(s.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[method+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range routed {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routed[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routed but not in openapi.yaml: %v\nin openapi.yaml but not routed: %v", missing, extra)
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes walked", len(routed))
	}
}

func TestOpenAPIServedMatchesEmbedded(t *testing.T) {
	ts, _ := startPaper(t)
	r := call(t, nil, "GET", ts.URL+"/api/v1/openapi.json", "", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("served JSON does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	y := call(t, nil, "GET", ts.URL+"/api/v1/openapi.yaml", "", "", nil)
	if !bytes.Equal(y.body, api.OpenAPIYAML()) {
		t.Fatal("served YAML differs from the embedded document")
	}
	if doc.Paths.Len() == 0 || doc.Paths.Len() != mustLoad(t, y.body).Paths.Len() {
		t.Fatal("JSON and YAML documents differ")
	}
}

func mustLoad(t *testing.T, data []byte) *openapi3.T {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIResponsesMatchSchemas sends real requests (successes and every
// kind of failure) to the server over the paper backend and validates each
// request and answer against the document: status documented, media type
// documented, body valid against the schema.
func TestOpenAPIResponsesMatchSchemas(t *testing.T) {
	_, rt := loadDoc(t)
	b := apitest.Paper(now)
	leader := httptest.NewServer(newServer(t, apitest.Paper(now), nil))
	defer leader.Close()
	h := newServer(t, b, nil)
	redirecting := apitest.Paper(now)
	redirecting.SetNotLeader(&api.NotLeaderError{LeaderID: "n1", LeaderAddr: leader.URL})
	follower := newServer(t, redirecting, func(c *api.Config) { c.Leader = api.LeaderRedirect })
	rejecting := newServer(t, redirecting, func(c *api.Config) { c.Leader = api.LeaderReject })
	noLeader := apitest.Paper(now)
	noLeader.SetNotLeader(&api.NotLeaderError{})
	headless := newServer(t, noLeader, nil)

	policy := apitest.PaperPolicy()
	policy.Tau = 12
	newPolicy := apitest.PaperPolicy()
	newPolicy.Name = "night"
	newPolicy.Strategy = strategy.Proactive.Name()
	type req struct {
		name     string
		h        http.Handler
		method   string
		path     string
		token    string
		ct       string
		body     any
		want     int
		validReq bool // the request itself must satisfy the document
		hdr      map[string]string
	}
	j := "application/json"
	cases := []req{
		{name: "healthz", method: "GET", path: "/healthz", want: 200, validReq: true},
		{name: "readyz", method: "GET", path: "/readyz", want: 200, validReq: true},
		{name: "openapi json", method: "GET", path: "/api/v1/openapi.json", want: 200, validReq: true},
		{name: "openapi yaml", method: "GET", path: "/api/v1/openapi.yaml", want: 200, validReq: true},
		{name: "datacenters", method: "GET", path: "/api/v1/datacenters", token: readToken, want: 200, validReq: true},
		{name: "put datacenters", method: "PUT", path: "/api/v1/datacenters", token: adminToken, body: api.DatacenterList{Datacenters: apitest.PaperDatacenters()}, want: 200, validReq: true},
		{name: "delays", method: "GET", path: "/api/v1/delays", token: readToken, want: 200, validReq: true},
		{name: "put delays", method: "PUT", path: "/api/v1/delays", token: adminToken, body: apitest.PaperDelays(), want: 200, validReq: true},
		{name: "vnf types", method: "GET", path: "/api/v1/vnf-types", token: readToken, want: 200, validReq: true},
		{name: "put vnf types", method: "PUT", path: "/api/v1/vnf-types", token: adminToken, body: api.VNFTypeList{VNFTypes: apitest.PaperVNFTypes()[:4]}, want: 200, validReq: true},
		{name: "chains", method: "GET", path: "/api/v1/chains", token: readToken, want: 200, validReq: true},
		{name: "put chains", method: "PUT", path: "/api/v1/chains", token: adminToken, body: api.ChainList{Chains: apitest.PaperChains()[:1]}, want: 200, validReq: true},
		{name: "policies", method: "GET", path: "/api/v1/policies", token: readToken, want: 200, validReq: true},
		{name: "policy", method: "GET", path: "/api/v1/policies/default", token: readToken, want: 200, validReq: true},
		{name: "put policy updated", method: "PUT", path: "/api/v1/policies/default", token: adminToken, body: policy, want: 200, validReq: true},
		{name: "put policy unchanged", method: "PUT", path: "/api/v1/policies/default", token: adminToken, body: policy, want: 200, validReq: true},
		{name: "put policy created", method: "PUT", path: "/api/v1/policies/night", token: adminToken, body: newPolicy, want: 201, validReq: true},
		{name: "put policy dry run", method: "PUT", path: "/api/v1/policies/default?dryRun=true", token: adminToken, body: api.Policy{
			IntervalSeconds: 50, Tau: 10, DelayBoundMs: 250, Predictor: "ar1", Strategy: "hybrid",
			Limits: []api.Limit{{VNF: "firewall", Min: 3, Max: 5}}}, want: 200, validReq: true},
		{name: "delete policy", method: "DELETE", path: "/api/v1/policies/night", token: adminToken, want: 204, validReq: true},
		{name: "delete policy again", method: "DELETE", path: "/api/v1/policies/night", token: adminToken, want: 404, validReq: true},
		{name: "state", method: "GET", path: "/api/v1/state", token: readToken, want: 200, validReq: true},
		{name: "state not modified", method: "GET", path: "/api/v1/state", token: readToken, hdr: map[string]string{"If-None-Match": `"s0"`}, want: 304, validReq: true},
		{name: "decisions", method: "GET", path: "/api/v1/decisions?since=1&limit=10", token: readToken, want: 200, validReq: true},
		{name: "scale", method: "POST", path: "/api/v1/vnfs/ids/scale", token: adminToken, body: api.ScaleRequest{DC: "dc0", Type: api.ScaleOut, NumberOfSteps: 1}, want: 202, validReq: true},
		{name: "scale conflict", method: "POST", path: "/api/v1/vnfs/ids/scale", token: adminToken, body: api.ScaleRequest{DC: "dc1", Type: api.ScaleIn, NumberOfSteps: 9}, want: 409, validReq: true},
		{name: "operation", method: "GET", path: "/api/v1/operations/op-1", token: readToken, want: 200, validReq: true},
		{name: "drain", method: "POST", path: "/api/v1/datacenters/dc1/drain", token: adminToken, want: 202, validReq: true},
		{name: "operation of drain", method: "GET", path: "/api/v1/operations/op-2", token: readToken, want: 200, validReq: true},
		{name: "decisions after a cursor", method: "GET", path: "/api/v1/decisions?after=1&limit=1", token: readToken, want: 200, validReq: true},
		{name: "decisions cursor past the newest", method: "GET", path: "/api/v1/decisions?after=999999", token: readToken, want: 400, validReq: true},
		{name: "undrain", method: "DELETE", path: "/api/v1/datacenters/dc1/drain", token: adminToken, want: 202, validReq: true},
		{name: "operation of undrain", method: "GET", path: "/api/v1/operations/op-3", token: readToken, want: 200, validReq: true},
		{name: "undrain not drained", method: "DELETE", path: "/api/v1/datacenters/dc1/drain", token: adminToken, want: 404, validReq: true},
		{name: "undrain with a read token", method: "DELETE", path: "/api/v1/datacenters/dc1/drain", token: readToken, want: 403},
		{name: "follower redirects undrain", h: follower, method: "DELETE", path: "/api/v1/datacenters/dc1/drain", token: adminToken, want: 307, validReq: true},
		{name: "unknown operation", method: "GET", path: "/api/v1/operations/op-77", token: readToken, want: 404, validReq: true},
		{name: "no token", method: "GET", path: "/api/v1/state", want: 401},
		{name: "read token writes", method: "PUT", path: "/api/v1/chains", token: readToken, body: api.ChainList{Chains: apitest.PaperChains()}, want: 403},
		{name: "malformed", method: "PUT", path: "/api/v1/chains", token: adminToken, ct: j, body: `{"chains":`, want: 400},
		{name: "invalid field", method: "PUT", path: "/api/v1/policies/default", token: adminToken, body: api.Policy{Tau: 1}, want: 400},
		{name: "bad query", method: "GET", path: "/api/v1/decisions?limit=0", token: readToken, want: 400},
		{name: "bad cursor", method: "GET", path: "/api/v1/decisions?after=abc", token: readToken, want: 400},
		{name: "wrong media type", method: "PUT", path: "/api/v1/delays", token: adminToken, ct: "text/csv", body: "a,b", want: 415},
		{name: "too large", method: "PUT", path: "/api/v1/delays", token: adminToken, ct: j, body: strings.Repeat(" ", 2<<20), want: 413},
		{name: "unknown reference", method: "PUT", path: "/api/v1/chains", token: adminToken, body: api.ChainList{Chains: []api.Chain{{Name: "x", Stages: []string{"nope"}}}}, want: 422},
		{name: "follower redirects", h: follower, method: "PUT", path: "/api/v1/chains", token: adminToken, body: api.ChainList{Chains: apitest.PaperChains()}, want: 307, validReq: true},
		{name: "follower rejects", h: rejecting, method: "POST", path: "/api/v1/datacenters/dc1/drain", token: adminToken, want: 421, validReq: true},
		{name: "no leader known", h: headless, method: "DELETE", path: "/api/v1/policies/default", token: adminToken, want: 503, validReq: true},
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			handler := tc.h
			if handler == nil {
				handler = h
			}
			var data []byte
			ct := tc.ct
			switch v := tc.body.(type) {
			case nil:
			case string:
				data = []byte(v)
			default:
				data, _ = json.Marshal(v)
				ct = "application/json"
			}
			r := httptest.NewRequest(tc.method, "http://api.test"+tc.path, bytes.NewReader(data))
			r.RemoteAddr = "127.0.0.1:1"
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body.Bytes())
			}

			vr := httptest.NewRequest(tc.method, "http://api.test"+tc.path, bytes.NewReader(data))
			if ct != "" {
				vr.Header.Set("Content-Type", ct)
			}
			for k, v := range tc.hdr {
				vr.Header.Set(k, v)
			}
			route, params, err := rt.FindRoute(vr)
			if err != nil {
				t.Fatalf("route not in the document: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
			if tc.validReq {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Fatalf("the test's request does not satisfy the document: %v", err)
				}
			}
			resp := w.Result()
			body, _ := io.ReadAll(resp.Body)
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
				Header: resp.Header, Options: opts}
			out.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("answer %d %s does not match the document: %v", resp.StatusCode, truncateBody(body), err)
			}
		})
	}
}

func truncateBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
