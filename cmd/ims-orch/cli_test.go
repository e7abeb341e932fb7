package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/daemon"
)

// apiServer serves an in-memory backend holding the paper's configuration
// and a live state on 127.0.0.1.
func apiServer(t *testing.T) (*apitest.Backend, string) {
	t.Helper()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b := apitest.New(func() time.Time { return now })
	ctx := t.Context()
	if _, err := b.SetDatacenters(ctx, apitest.PaperDatacenters()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetVNFTypes(ctx, apitest.PaperVNFTypes()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutPolicy(ctx, apitest.PaperPolicy()); err != nil {
		t.Fatal(err)
	}
	b.SetState(apitest.PaperState(now, 2))
	b.SetDiscovery("dc0", api.Discovery{DNSServer: "127.0.53.10:53", Zone: "dc0.ims.local",
		PCSCFSRV: "_sip._udp.pcscf.dc0.ims.local", SCSCFSRV: "_sip._udp.scscf.dc0.ims.local"})
	b.AddDecisions(api.Decision{Round: 41, At: now, Kind: api.DecisionReactive, DC: "dc0", VNF: "firewall", Delta: 1,
		Reason: "reactive create: 2 of 2 working instances overloaded", Detail: map[string]any{"instance": "dc0-firewall-1"}})
	srv, err := api.New(api.Config{Backend: b, AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return b, hs.URL
}

// runClient runs the CLI with every client command's flags reset.
func runClient(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	for _, c := range []*cobra.Command{getCmd, describeCmd, applyCmd, scaleCmd, statusCmd, serveCmd} {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			_ = f.Value.Set(f.DefValue)
			f.Changed = false
		})
	}
	t.Setenv("IMS_ORCH_CONTEXT", "")
	t.Setenv("IMS_ORCH_TOKEN", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	return runCLI(t, stdin, args...)
}

func TestGetFormats(t *testing.T) {
	_, url := apiServer(t)
	cases := []struct {
		name  string
		args  []string
		want  []string
		check func(t *testing.T, out string)
	}{
		{"instances table", []string{"get", "instances"}, []string{"ID", "ADDRESS", "dc0", "firewall", "127.10.1.1:5060"}, nil},
		{"instance address", []string{"describe", "instance", "dc3-pcscf-1"}, []string{"address: 127.13.1.1:5060"}, nil},
		{"datacenters", []string{"get", "datacenters"}, []string{"NAME", "GROUP", "DNS-SERVER", "ZONE", "dc7", "127.0.53.10:53", "dc0.ims.local"}, nil},
		{"policy yaml", []string{"get", "policy", "default", "-o", "yaml"}, []string{"intervalSeconds: 50", "strategy: hybrid"}, nil},
		{"state summary", []string{"get", "state"}, []string{"interval 42", "WORKING"}, nil},
		{"decisions", []string{"get", "decisions"}, []string{"reactive", "2 of 2 working"}, nil},
		{"paths json", []string{"get", "paths", "-o", "json"}, nil, func(t *testing.T, out string) {
			var ps []api.Path
			if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps) == 0 {
				t.Fatalf("paths json: %v %q", err, out)
			}
		}},
		{"describe dc", []string{"describe", "dc", "dc0"}, []string{"datacenter dc0", "discovery DNS: server 127.0.53.10:53, zone dc0.ims.local, P-CSCFs _sip._udp.pcscf.dc0.ims.local",
			"INSTANCES", "ADDRESS", "PATHS", "DECISIONS"}, nil},
		{"status", []string{"status"}, []string{"ready", "interval 42"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runClient(t, "", append(tc.args, "--server", url)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	_, url := apiServer(t)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"unknown resource", []string{"get", "bananas"}, 2},
		{"policy without name", []string{"get", "policy"}, 2},
		{"bad output", []string{"get", "state", "-o", "xml"}, 2},
		{"missing policy", []string{"get", "policy", "nope"}, 1},
		{"scale without dc", []string{"scale", "firewall", "--out", "1"}, 2},
		{"scale both ways", []string{"scale", "firewall", "--dc", "dc0", "--out", "1", "--in", "1"}, 2},
		{"apply without file", []string{"apply"}, 2},
		{"describe what", []string{"describe", "cluster", "x"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runClient(t, "", append(tc.args, "--server", url)...)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
		})
	}
}

// apply is idempotent, prints the diff, and --dry-run writes nothing.
func TestApply(t *testing.T) {
	b, url := apiServer(t)
	p := apitest.PaperPolicy()
	p.DelayBoundMs = 180
	data, _ := json.Marshal(p)
	var generic any
	_ = json.Unmarshal(data, &generic)
	y, _ := yaml.Marshal(generic)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, y, 0o600); err != nil {
		t.Fatal(err)
	}
	writes := b.Writes()
	out, err := runClient(t, "", "apply", "-f", file, "--dry-run", "--server", url)
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(out, "delayBoundMs: 250 → 180") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if b.Writes() != writes {
		t.Fatal("dry run wrote")
	}
	out, err = runClient(t, "", "apply", "-f", file, "--server", url)
	if err != nil || !strings.Contains(out, "policy/default updated") || !strings.Contains(out, "delayBoundMs: 250 → 180") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = runClient(t, string(y), "apply", "-f", "-", "--server", url, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res []struct {
		Policy  string       `json:"policy"`
		Outcome string       `json:"outcome"`
		Changes []api.Change `json:"changes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || res[0].Outcome != api.OutcomeUnchanged || len(res[0].Changes) != 0 {
		t.Fatalf("second apply not unchanged: %v %s", err, out)
	}
	// strict parsing
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("name: x\ndelayBound: 3\n"), 0o600)
	if _, err := runClient(t, "", "apply", "-f", bad, "--server", url); exitCode(err) != 2 || !strings.Contains(err.Error(), "delayBound") {
		t.Fatalf("unknown field: %v", err)
	}
}

// Server and token come from the environment or a context file.
func TestClientContext(t *testing.T) {
	_, url := apiServer(t)
	ctxFile := filepath.Join(t.TempDir(), "ctx.yaml")
	if err := os.WriteFile(ctxFile, []byte("server: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runClient(t, "", "get", "datacenters", "--context-file", ctxFile); err != nil || !strings.Contains(out, "dc0") {
		t.Fatalf("context file: %v %s", err, out)
	}
	t.Setenv("IMS_ORCH_SERVER", url)
	if out, err := runClient(t, "", "get", "chains"); err != nil || !strings.Contains(out, "NAME") {
		t.Fatalf("env: %v %s", err, out)
	}
	t.Setenv("IMS_ORCH_SERVER", "")
	if _, err := runClient(t, "", "get", "chains", "--context-file", filepath.Join(t.TempDir(), "missing")); exitCode(err) != 2 {
		t.Fatalf("missing context file: %v", err)
	}
}

func TestScaleAndCompletion(t *testing.T) {
	_, url := apiServer(t)
	out, err := runClient(t, "", "scale", "firewall", "--dc", "dc0", "--out", "2", "--server", url)
	if err != nil || !strings.Contains(out, "SCALE_OUT firewall in dc0 by 2") {
		t.Fatalf("scale: %v %s", err, out)
	}
	var buf bytes.Buffer
	if err := rootCmd.GenBashCompletionV2(&buf, true); err != nil || !strings.Contains(buf.String(), "__start_ims-orch") {
		t.Fatalf("completion: %v", err)
	}
	out, err = runClient(t, "", "serve", "--print-default-config")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.ParseConfig([]byte(out)); err != nil {
		t.Fatalf("printed default config: %v", err)
	}
}

func FuzzParsePolicies(f *testing.F) {
	f.Add([]byte("name: default\nintervalSeconds: 10\ntau: 6\ndelayBoundMs: 50\npredictor: ar1\nstrategy: hybrid\n"))
	f.Add([]byte("policies:\n  - {name: a, limits: [{vnf: ids, min: 1, max: 2}]}\n"))
	f.Add([]byte("[1, 2]"))
	f.Add([]byte("name: x\nlimits: {a: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := parsePolicies(data)
		if err != nil {
			return
		}
		if len(ps) == 0 {
			t.Fatal("no policy and no error")
		}
		for _, p := range ps {
			if p.Name == "" {
				t.Fatal("a policy without a name was accepted")
			}
		}
	})
}

// The CLI against a real daemon (the embedded default on a virtual clock):
// status, apply --dry-run (nothing committed) and apply (committed, then
// unchanged on the second run).
func TestCLIAgainstDaemon(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.DefaultConfig(), daemon.Options{Clock: clk, Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(45 * time.Second) // near the ramp's peak
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	url := d.URL()
	out, err := runClient(t, "", "status", "--server", url)
	if err != nil || !strings.Contains(out, "ready") || !strings.Contains(out, "tokyo") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, err = runClient(t, "", "apply", "-f", "../../deploy/config/policy-tight-delay.yaml", "--dry-run", "--server", url)
	if err != nil || !strings.Contains(out, "delayBoundMs: 250 → 50") || !strings.Contains(out, "next round would decide") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if got, _ := d.Backend().Policy(t.Context(), "default"); got.DelayBoundMs != 250 {
		t.Fatalf("dry run committed: %g", got.DelayBoundMs)
	}
	out, err = runClient(t, "", "apply", "-f", "../../deploy/config/policy-tight-delay.yaml", "--server", url)
	if err != nil || !strings.Contains(out, "policy/default updated") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = runClient(t, "", "apply", "-f", "../../deploy/config/policy-tight-delay.yaml", "--server", url)
	if err != nil || !strings.Contains(out, "policy/default unchanged") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	out, err = runClient(t, "", "describe", "dc", "tokyo", "--server", url)
	if err != nil || !strings.Contains(out, "tokyo-ids") {
		t.Fatalf("describe: %v\n%s", err, out)
	}
}
