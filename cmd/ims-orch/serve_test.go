package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/daemon"
)

// serve with identity flags (as every operator pod runs it) accepts a
// config file that parses: here a DP stage with a loadThreshold and the
// catalog's thresholds. The run stops at --raft-advertise, which serve
// checks after it has applied the identity to the config (a single-node
// file has no raft), so no daemon starts.
func TestServeIdentityTakesAParsedConfig(t *testing.T) {
	y := strings.Replace(string(daemon.DefaultYAML()), "{name: firewall,", "{name: firewall, loadThreshold: 70,", 1)
	if _, err := daemon.ParseConfig([]byte(y)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "lt70.yaml")
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runClient(t, "", "serve", "--config", file, "--node-id", "node2", "--api-url", "http://127.0.0.1:8081",
		"--raft-advertise", "127.0.0.1:7000")
	if want := "--raft-advertise: node.raftBind is empty"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("serve --config %s --node-id ...: %v, want the config accepted and %q", file, err, want)
	}
}
