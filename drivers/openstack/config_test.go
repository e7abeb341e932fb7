package openstack

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/drivers"
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
		{"metadata key of ours", "datacenters: {a: {}}\nserver_metadata: {ims-orch.dc: x}", `server_metadata."ims-orch.dc": keys starting with "ims-orch."`},
		{"metadata key of ours, other case", "datacenters: {a: {}}\nserver_metadata: {IMS-ORCH.dc: x}", `server_metadata."IMS-ORCH.dc": keys starting with "ims-orch." (in any case)`},
		{"metadata key empty", "datacenters: {a: {}}\nserver_metadata: {'': x}", `server_metadata."": key must match`},
		{"metadata key slash", "datacenters: {a: {}}\nserver_metadata: {a/b: x}", `server_metadata."a/b": key must match`},
		{"metadata key equals", "datacenters: {a: {}}\nserver_metadata: {'a=b': x}", `server_metadata."a=b": key must match`},
		{"metadata key not ASCII", "datacenters: {a: {}}\nserver_metadata: {ключ: x}", `server_metadata."ключ": key must match`},
		{"metadata key long", "datacenters: {a: {}}\nserver_metadata: {" + strings.Repeat("k", 256) + ": x}", `server_metadata."kkk`},
		{"metadata value long", "datacenters: {a: {}}\nserver_metadata: {run: " + strings.Repeat("x", 256) + "}", `server_metadata."run": value must be at most 255 characters`},
		{"metadata value long in runes", "datacenters: {a: {}}\nserver_metadata: {run: " + strings.Repeat("я", 256) + "}", `server_metadata."run": value must be at most 255 characters (Nova's limit), got 256`},
		{"metadata keys too many", "datacenters: {a: {}}\nserver_metadata: {" + metadataKeys(124) + "}", "server_metadata: 124 keys, at most 123"},
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

// metadataKeys is n YAML map entries k0: v, k1: v, ...
func metadataKeys(n int) string {
	kv := make([]string, n)
	for i := range kv {
		kv[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(kv, ", ")
}

// server_metadata takes what Nova's server-create schema and default
// metadata_items quota take: its key characters, values of 255
// characters (not bytes), 128 keys in all with ims-orch's own.
func TestServerMetadataAsNovaTakesIt(t *testing.T) {
	for name, yml := range map[string]string{
		"key characters":          "{'Az09_:. -': x}",
		"255 Cyrillic characters": "{run: " + strings.Repeat("я", 255) + "}",
		"255-character key":       "{" + strings.Repeat("k", 255) + ": x}",
		"123 keys":                "{" + metadataKeys(123) + "}",
		"prefix without the dot":  "{ims-orch-test.run: x}",
	} {
		if _, err := ParseConfig([]byte("datacenters: {a: {}}\nserver_metadata: " + yml + "\n")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := Config{DCs: map[string]DCConfig{"a": {}}, ServerMetadata: map[string]string{"k": "\xff"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `server_metadata."k": value is not valid UTF-8`) {
		t.Errorf("invalid UTF-8 value: %v", err)
	}
	// the quota arithmetic counts the keys the driver sets itself
	if n := len(drivers.Spec{}.CloudMetadata("p")); n != ownMetadataKeys {
		t.Errorf("the driver sets %d keys of its own, ownMetadataKeys says %d", n, ownMetadataKeys)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("datacenters: {a: {cloud: x, networks: [none]}}\nanti_affinity: {max_per_host: 2}\n"))
	f.Add([]byte("datacenters: {a: {}}\npools: {p: {soft: true}}\npoll_interval: 3s\n"))
	f.Add([]byte("datacenters: [\n"))
	f.Add([]byte("datacenters: {a: {}}\nserver_metadata: {deployment: lab, 'a b:c.d_e-f': x}\n"))
	f.Add([]byte("datacenters: {a: {}}\nserver_metadata: {IMS-Orch.x: y, k/1: ключ}\n"))
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
		if len(c.ServerMetadata) > novaMetadataItems-ownMetadataKeys {
			t.Fatalf("accepted %d server_metadata keys", len(c.ServerMetadata))
		}
		for k, v := range c.ServerMetadata {
			if !metadataKeyPattern.MatchString(k) || strings.HasPrefix(strings.ToLower(k), ownMetadataPrefix) ||
				!utf8.ValidString(v) || utf8.RuneCountInString(v) > maxMetadataLen {
				t.Fatalf("accepted server_metadata %q: %q", k, v)
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
