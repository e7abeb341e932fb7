package openstack

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseConfig(t *testing.T) {
	good := `
datacenters:
  dc-a: {cloud: prod, region: RegionOne, availability_zone: az-a, image: tiny, flavor: m1.tiny, networks: [none]}
  dc-b: {cloud: prod, region: RegionTwo, cacert: /etc/ssl/ca.pem, networks: [11111111-2222-3333-4444-555555555555]}
anti_affinity: {max_per_host: 2}
pools:
  scscf: {soft: true}
poll_interval: 1s
orphan_grace: 5m
server_metadata: {deployment: lab}
`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.DCs["dc-b"].Region != "RegionTwo" || time.Duration(c.PollInterval) != time.Second || time.Duration(c.OrphanGrace) != 5*time.Minute {
		t.Errorf("parsed %+v", c)
	}
	if c.ServerMetadata["deployment"] != "lab" {
		t.Errorf("server_metadata %v", c.ServerMetadata)
	}
	if c.Retries != DefaultRetries || time.Duration(c.ActiveTimeout) != DefaultActiveTimeout || c.Parallelism != DefaultParallelism {
		t.Errorf("defaults not filled: %+v", c)
	}
	if got := c.spreading("pcscf"); got != (AntiAffinity{MaxPerHost: 2}) {
		t.Errorf("pcscf spreading %+v", got)
	}
	if got := c.spreading("scscf"); got != (AntiAffinity{Soft: true}) {
		t.Errorf("scscf spreading %+v", got)
	}

	bad := []struct{ name, yaml, want string }{
		{"no datacenters", `poll_interval: 1s`, "datacenters: at least one"},
		{"unknown field", "datacenters: {a: {}}\nfoo: 1", "field foo not found"},
		{"bad duration", "datacenters: {a: {}}\npoll_interval: soon", `invalid duration "soon"`},
		{"duration not a string", "datacenters: {a: {}}\npoll_interval: [1]", "want a duration"},
		{"negative duration", "datacenters: {a: {}}\nactive_timeout: -1s", "active_timeout: must not be negative"},
		{"bad dc name", "datacenters: {'a b': {}}", "datacenters.a b: name must match"},
		{"none with others", "datacenters: {a: {networks: [none, x]}}", `datacenters.a.networks: "none" must be the only entry`},
		{"token without address", "datacenters: {a: {controller_token: t}}", "controller_address and controller_token go together"},
		{"soft with max", "datacenters: {a: {}}\nanti_affinity: {soft: true, max_per_host: 2}", "anti_affinity: max_per_host applies to hard"},
		{"pool max negative", "datacenters: {a: {}}\npools: {p: {max_per_host: -1}}", "pools.p.max_per_host: must be between"},
		{"retries too many", "datacenters: {a: {}}\nretries: 5000", "retries: must be between 0 and 1000"},
		{"not yaml", "datacenters: [", "openstack config:"},
		{"metadata key of ours", "datacenters: {a: {}}\nserver_metadata: {ims-orch.dc: x}", `server_metadata."ims-orch.dc": keys starting with "ims-orch." are ims-orch's own`},
		{"metadata key empty", "datacenters: {a: {}}\nserver_metadata: {'': x}", `server_metadata."": key must be 1 to 255 bytes`},
		{"metadata value long", "datacenters: {a: {}}\nserver_metadata: {run: " + strings.Repeat("x", 256) + "}", `server_metadata."run": value must be at most 255 bytes`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("datacenters: {a: {cloud: x, networks: [none]}}\nanti_affinity: {max_per_host: 2}\n"))
	f.Add([]byte("datacenters: {a: {}}\npools: {p: {soft: true}}\npoll_interval: 3s\n"))
	f.Add([]byte("datacenters: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config Validate rejects: %v", err)
		}
		for name := range c.DCs {
			if !namePattern.MatchString(name) {
				t.Fatalf("accepted datacenter name %q", name)
			}
		}
	})
}

func TestAgentUserData(t *testing.T) {
	got := string(AgentUserData(AgentSettings{Controller: "10.0.0.1:7000", Token: "a\"b\nc", InstanceID: "i", DC: "d", VNF: "v"}))
	for _, want := range []string{"#cloud-config\n", "path: /etc/ims-orch/agent.env", "permissions: '0600'",
		`IMS_ORCH_TOKEN="a\"b\nc"`, `IMS_ORCH_CONTROLLER="10.0.0.1:7000"`, `IMS_ORCH_AGENT_ARGS=""`} {
		if !strings.Contains(got, want) {
			t.Errorf("user data lacks %q:\n%s", want, got)
		}
	}
	// a token with a newline or a quote must not break the YAML: parse it
	// and find every file and the commands intact
	var doc struct {
		WriteFiles []struct {
			Path, Permissions, Owner, Content string
		} `yaml:"write_files"`
		Runcmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatalf("user data is not YAML: %v\n%s", err, got)
	}
	if len(doc.WriteFiles) != 3 || len(doc.Runcmd) != 2 {
		t.Fatalf("files %d, commands %d, want 3 and 2:\n%s", len(doc.WriteFiles), len(doc.Runcmd), got)
	}
	env, tok, unit := doc.WriteFiles[0], doc.WriteFiles[1], doc.WriteFiles[2]
	if env.Path != AgentEnvFile || strings.Count(env.Content, "\n") != 6 || env.Permissions != "0600" {
		t.Errorf("env file %+v: want 6 lines, mode 0600", env)
	}
	if tok.Path != AgentTokenFile || tok.Content != "a\"b\nc\n" || tok.Permissions != "0600" || tok.Owner != "root:root" {
		t.Errorf("token file %+v", tok)
	}
	if unit.Path != AgentUnitFile || !strings.Contains(unit.Content, "ExecStart="+AgentBinary+" agent --controller ${IMS_ORCH_CONTROLLER} --token-file "+AgentTokenFile) ||
		!strings.Contains(unit.Content, "\n\n[Service]\n") {
		t.Errorf("unit file:\n%s", unit.Content)
	}
	if strings.Join(doc.Runcmd[1], " ") != "systemctl enable --now ims-orch-agent.service" {
		t.Errorf("runcmd %v", doc.Runcmd)
	}
}

// The unit the user data writes is the one shipped in deploy/systemd.
func TestAgentUnitMatchesDeploy(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/ims-orch-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != agentUnit {
		t.Fatalf("deploy/systemd/ims-orch-agent.service differs from the unit in the user data:\n%s\n---\n%s", b, agentUnit)
	}
}
