package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
)

type chanIntake chan string

func (c chanIntake) ReportStats(id string, _ local.Stats) error {
	select {
	case c <- id:
	default:
	}
	return nil
}

func TestAgentCommand(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("agent-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chanIntake, 1)
	h, err := agent.NewStatsHandler(map[string]agent.Intake{"tokyo": got}, "agent-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	good := agentFlags{controller: srv.URL, tokenFile: tok, instance: "tokyo-firewall-1", dc: "tokyo",
		proc: "../../controller/agent/testdata/host/proc", logFormat: "text", interval: 100 * time.Millisecond}

	for _, tc := range []struct {
		name   string
		mutate func(*agentFlags)
		want   string
	}{
		{"no controller", func(o *agentFlags) { o.controller = "" }, "--controller"},
		{"no token file", func(o *agentFlags) { o.tokenFile = "" }, "--token-file"},
		{"missing token file", func(o *agentFlags) { o.tokenFile = tok + ".nope" }, "--token-file"},
		{"no instance", func(o *agentFlags) { o.instance = "" }, "--instance"},
		{"no dc", func(o *agentFlags) { o.dc = "" }, "--dc"},
		{"interval too short", func(o *agentFlags) { o.interval = time.Millisecond }, "--interval"},
		{"bad log format", func(o *agentFlags) { o.logFormat = "xml" }, "--log-format"},
		{"bad controller", func(o *agentFlags) { o.controller = "ftp://x" }, "--controller"},
		{"missing CA file", func(o *agentFlags) { o.caFile = tok + ".nope" }, "--ca-file"},
		{"CA file without PEM", func(o *agentFlags) { o.caFile = tok }, "--ca-file"},
		{"bad kamailio rpc", func(o *agentFlags) { o.kamailioRPC = "localhost" }, "--kamailio-rpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mutate(&o)
			err := runAgent(context.Background(), o, &bytes.Buffer{})
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error naming %s", err, tc.want)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- runAgent(ctx, good, &logs) }()
	select {
	case id := <-got:
		if id != "tokyo-firewall-1" {
			t.Fatalf("report for %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no statistics reached the handler")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "ims-orch agent running") {
		t.Fatalf("logs: %s", logs.String())
	}
}

// cpIntake records the CP counters the stats endpoint hands on.
type cpIntake chan map[string]int64

// With --kamailio-rpc the agent reads the S-CSCF's htable "cp" over
// JSON-RPC with every sample and sends it along (a stand-in answers
// htable.dump as Kamailio's jsonrpcs does).
func TestAgentCommandSendsCPCounters(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("agent-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kam, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer kam.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := kam.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var req struct {
				ID     int64  `json:"id"`
				Method string `json:"method"`
				Params []any  `json:"params"`
			}
			if json.Unmarshal(buf[:n], &req) != nil || req.Method != "htable.dump" || len(req.Params) != 1 || req.Params[0] != "cp" {
				continue
			}
			_, _ = kam.WriteToUDP(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"result":[{"entry":1,"size":1,"slot":[{"name":"tokyo>london","value":42,"type":"int"}]}]}`, req.ID), from)
		}
	}()
	got := make(cpIntake, 1)
	h, err := agent.NewStatsHandler(map[string]agent.Intake{"tokyo": make(chanIntake, 1)}, "agent-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	h.OnCP = func(_, _ string, _ time.Time, cp map[string]int64) {
		select {
		case got <- cp:
		default:
		}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	o := agentFlags{controller: srv.URL, tokenFile: tok, instance: "tokyo-scscf-1", dc: "tokyo", kamailioRPC: kam.LocalAddr().String(),
		proc: "../../controller/agent/testdata/host/proc", logFormat: "text", interval: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, o, &bytes.Buffer{}) }()
	select {
	case cp := <-got:
		if cp["tokyo>london"] != 42 || len(cp) != 1 {
			t.Fatalf("CP counters %v, want tokyo>london 42", cp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no CP counters reached the stats endpoint")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
