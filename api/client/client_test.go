package client_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/api/client"
)

var (
	adminToken = api.TokenPrefix + strings.Repeat("A", 43)
	readToken  = api.TokenPrefix + strings.Repeat("R", 43)
	epoch      = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

func now() time.Time { return epoch }

// serve starts the real server over b on 127.0.0.1 until the test ends.
func serve(t *testing.T, b api.Backend, mode api.LeaderMode) *httptest.Server {
	t.Helper()
	tokens, err := api.NewTokenStore([]api.TokenEntry{
		{Name: "ops", Scope: api.ScopeAdmin, SHA256: api.HashToken(adminToken)},
		{Name: "ro", Scope: api.ScopeRead, SHA256: api.HashToken(readToken)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Backend: b, Tokens: tokens, Leader: mode,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func mustClient(t *testing.T, url, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(token)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRoundTrips(t *testing.T) {
	ctx := context.Background()
	b := apitest.New(now)
	ts := serve(t, b, "")
	c := mustClient(t, ts.URL+"/", adminToken)

	res, err := c.PutDatacenters(ctx, apitest.PaperDatacenters())
	if err != nil || res.Outcome != api.OutcomeCreated {
		t.Fatalf("PutDatacenters: %+v %v", res, err)
	}
	dcs, err := c.Datacenters(ctx)
	if err != nil || len(dcs) != 8 || dcs[7].Group != "g3" {
		t.Fatalf("Datacenters: %v %v", dcs, err)
	}
	if res, err := c.PutDelays(ctx, apitest.PaperDelays()); err != nil || res.Outcome != api.OutcomeCreated {
		t.Fatalf("PutDelays: %+v %v", res, err)
	}
	m, err := c.Delays(ctx)
	if err != nil || m.DelaysMs[0][7] != 50 {
		t.Fatalf("Delays: %v %v", m, err)
	}
	if _, err := c.PutVNFTypes(ctx, apitest.PaperVNFTypes()); err != nil {
		t.Fatal(err)
	}
	ts2, err := c.VNFTypes(ctx)
	if err != nil || len(ts2) != 5 || ts2[3].Thresholds.PktRate != 2000 {
		t.Fatalf("VNFTypes: %v %v", ts2, err)
	}
	if _, err := c.PutChains(ctx, apitest.PaperChains()); err != nil {
		t.Fatal(err)
	}
	if cs, err := c.Chains(ctx); err != nil || len(cs) != 2 {
		t.Fatalf("Chains: %v %v", cs, err)
	}

	p := apitest.PaperPolicy()
	if res, err := c.PutPolicy(ctx, p); err != nil || res.Outcome != api.OutcomeCreated {
		t.Fatalf("PutPolicy: %+v %v", res, err)
	}
	if res, err := c.PutPolicy(ctx, p); err != nil || res.Outcome != api.OutcomeUnchanged || len(res.Changes) != 0 {
		t.Fatalf("PutPolicy again: %+v %v", res, err)
	}
	p.DelayBoundMs = 50
	dry, err := c.DryRunPolicy(ctx, p)
	if err != nil || !dry.DryRun || len(dry.Changes) != 1 || dry.Changes[0].Path != "delayBoundMs" {
		t.Fatalf("DryRunPolicy: %+v %v", dry, err)
	}
	if got, err := c.Policy(ctx, "default"); err != nil || got.DelayBoundMs != 250 {
		t.Fatalf("dry run committed: %+v %v", got, err)
	}
	if ps, err := c.Policies(ctx); err != nil || len(ps) != 1 {
		t.Fatalf("Policies: %v %v", ps, err)
	}

	b.SetState(apitest.PaperState(epoch, 2))
	st, err := c.State(ctx)
	if err != nil || st.Interval != 42 || len(st.Instances) != 56 || st.Predictions[0].Actual == nil || st.Predictions[1].Actual != nil {
		t.Fatalf("State: interval %d, %d instances, %v", st.Interval, len(st.Instances), err)
	}
	op, err := c.Scale(ctx, api.ScaleRequest{DC: "dc0", VNF: "ids", Type: api.ScaleIn, NumberOfSteps: 1})
	if err != nil || op.Kind != api.OpScale {
		t.Fatalf("Scale: %+v %v", op, err)
	}
	if got, err := c.Operation(ctx, op.ID); err != nil || got.State != api.OpCompleted {
		t.Fatalf("Operation: %+v %v", got, err)
	}
	if op, err := c.Drain(ctx, "dc7"); err != nil || op.Drain.DC != "dc7" {
		t.Fatalf("Drain: %+v %v", op, err)
	}
	ds, err := c.Decisions(ctx, 42, 1)
	if err != nil || len(ds) != 1 || ds[0].Kind != api.DecisionManual || ds[0].Delta != -1 {
		t.Fatalf("Decisions: %+v %v", ds, err)
	}
	if err := c.DeletePolicy(ctx, "default"); !client.IsStatus(err, 409) {
		t.Fatalf("deleting the policy in force: %v, want 409", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := c.OpenAPI(ctx)
	var parsed struct {
		OpenAPI string `json:"openapi"`
	}
	if err != nil || json.Unmarshal(doc, &parsed) != nil || parsed.OpenAPI != "3.0.3" {
		t.Fatalf("OpenAPI: %q %v", parsed.OpenAPI, err)
	}
}

func TestClientProblemErrors(t *testing.T) {
	ctx := context.Background()
	ts := serve(t, apitest.Paper(now), "")
	admin := mustClient(t, ts.URL, adminToken)
	cases := []struct {
		name   string
		call   func() error
		status int
		field  string
	}{
		{name: "not found", call: func() error { _, err := admin.Policy(ctx, "none"); return err }, status: 404},
		{name: "validation lists fields", call: func() error {
			_, err := admin.PutPolicy(ctx, api.Policy{Name: "x", Tau: 1, IntervalSeconds: 1, DelayBoundMs: 1, Predictor: "ar1", Strategy: "magic"})
			return err
		}, status: 400, field: "strategy"},
		{name: "unknown reference", call: func() error {
			_, err := admin.PutChains(ctx, []api.Chain{{Name: "dp", Stages: []string{"dpi"}}})
			return err
		}, status: 422, field: "chains[0].stages[0]"},
		{name: "conflict", call: func() error {
			_, err := admin.Scale(ctx, api.ScaleRequest{DC: "dc0", VNF: "ids", Type: api.ScaleIn, NumberOfSteps: 50})
			return err
		}, status: 409},
		{name: "read token writes", call: func() error {
			return mustClient(t, ts.URL, readToken).DeletePolicy(ctx, "default")
		}, status: 403},
		{name: "no token", call: func() error { _, err := mustClient(t, ts.URL, "").State(ctx); return err }, status: 401},
		{name: "bad query", call: func() error { _, err := admin.Decisions(ctx, 0, 5000); return err }, status: 400, field: "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var pe *client.ProblemError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ProblemError", err, err)
			}
			if pe.Status != tc.status || pe.Problem.Status != tc.status || !client.IsStatus(err, tc.status) {
				t.Fatalf("status %d, want %d: %v", pe.Status, tc.status, err)
			}
			if tc.field != "" && pe.Problem.Field != tc.field {
				t.Fatalf("field %q, want %q", pe.Problem.Field, tc.field)
			}
			if pe.Error() == "" || pe.Problem.Detail == "" {
				t.Fatalf("empty error text: %+v", pe)
			}
		})
	}
}

func TestClientFollowsLeader(t *testing.T) {
	for _, mode := range []api.LeaderMode{api.LeaderRedirect, api.LeaderReject, api.LeaderProxy} {
		t.Run(string(mode), func(t *testing.T) {
			lb := apitest.Paper(now)
			leader := serve(t, lb, "")
			fb := apitest.Paper(now)
			fb.SetNotLeader(&api.NotLeaderError{LeaderID: "n1", LeaderAddr: leader.URL})
			follower := serve(t, fb, mode)
			c := mustClient(t, follower.URL, adminToken)
			op, err := c.Drain(context.Background(), "dc3")
			if err != nil {
				t.Fatal(err)
			}
			if lb.Writes() != 1 || fb.Writes() != 0 {
				t.Fatalf("leader writes %d, follower writes %d", lb.Writes(), fb.Writes())
			}
			if _, err := lb.Operation(context.Background(), op.ID); err != nil {
				t.Fatalf("operation not on the leader: %v", err)
			}
		})
	}
}

func TestClientFollowsLeaderOnce(t *testing.T) {
	// Two nodes naming each other: the client gives up after one hop with
	// the 307 as a ProblemError naming the leader.
	a, b := apitest.Paper(now), apitest.Paper(now)
	sa, sb := serve(t, a, api.LeaderRedirect), serve(t, b, api.LeaderRedirect)
	a.SetNotLeader(&api.NotLeaderError{LeaderAddr: sb.URL})
	b.SetNotLeader(&api.NotLeaderError{LeaderAddr: sa.URL})
	_, err := mustClient(t, sa.URL, adminToken).Drain(context.Background(), "dc0")
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != http.StatusTemporaryRedirect || pe.Problem.Leader != sa.URL {
		t.Fatalf("error %v", err)
	}
}

func TestClientTLSAndOptions(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	b := apitest.Paper(now)
	tokens, _ := api.NewTokenStore([]api.TokenEntry{{Name: "ro", Scope: api.ScopeRead, SHA256: api.HashToken(readToken)}})
	s, err := api.New(api.Config{Backend: b, Tokens: tokens, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := mustClient(t, ts.URL, readToken, client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), client.WithTimeout(5*time.Second))
	if _, err := c.State(context.Background()); err != nil {
		t.Fatal(err)
	}
	untrusting := mustClient(t, ts.URL, readToken)
	if _, err := untrusting.State(context.Background()); err == nil {
		t.Fatal("a client without the server's CA connected")
	}
	for _, bad := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := client.New(bad); err == nil {
			t.Fatalf("New(%q) accepted", bad)
		}
	}
}
