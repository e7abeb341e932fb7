package openstack

import (
	"fmt"
	"strconv"
	"strings"
)

// AgentSettings is what an instance's statistics agent needs to report to
// its datacenter's local controller.
type AgentSettings struct {
	Controller string // base URL (or host:port) of the node that runs the DC's local controller
	Token      string // bearer token the agent presents (role.agents.tokenFile on that node)
	InstanceID string
	DC         string
	VNF        string
	// KamailioRPC, on an S-CSCF, is its Kamailio JSON-RPC socket inside the
	// instance: the agent then sends the S-CSCF's CP counters per entry>exit
	// DC with its statistics (--kamailio-rpc). Empty elsewhere.
	KamailioRPC string
}

// SCSCFKamailioRPC is where an S-CSCF image's Kamailio answers JSON-RPC
// (jsonrpcs dgram_socket, deploy/kamailio's template on 127.0.0.1).
const SCSCFKamailioRPC = "127.0.0.1:8090"

// Agent file locations inside an instance (deploy/systemd/ims-orch-agent.service).
const (
	AgentEnvFile   = "/etc/ims-orch/agent.env"
	AgentTokenFile = "/etc/ims-orch/agent-token"
	AgentUnitFile  = "/etc/systemd/system/ims-orch-agent.service"
	// AgentBinary is where the image carries the ims-orch binary.
	AgentBinary = "/usr/local/bin/ims-orch"
)

// agentUnit runs `ims-orch agent` from the env file's settings.
const agentUnit = `[Unit]
Description=ims-orch statistics agent (CPU, memory, packet rate to the local controller)
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=` + AgentEnvFile + `
ExecStart=` + AgentBinary + ` agent --controller ${IMS_ORCH_CONTROLLER} --token-file ` + AgentTokenFile + ` --instance ${IMS_ORCH_INSTANCE_ID} --dc ${IMS_ORCH_DC} --log-format json $IMS_ORCH_AGENT_ARGS
Restart=always
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`

// AgentUserData renders cloud-init user data that starts the instance's
// statistics agent: it writes the agent's settings to /etc/ims-orch/agent.env
// and its token to /etc/ims-orch/agent-token (both mode 0600, root only),
// the systemd unit ims-orch-agent.service, and enables and starts the unit.
// The image must carry the ims-orch binary at AgentBinary. Values are quoted
// (a shell/systemd env file, a YAML double-quoted scalar). The result holds
// the token: never log it.
func AgentUserData(s AgentSettings) []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\nwrite_files:\n  - path: " + AgentEnvFile + "\n    permissions: '0600'\n    owner: root:root\n    content: |\n")
	args := ""
	if s.KamailioRPC != "" {
		args = "--kamailio-rpc " + s.KamailioRPC
	}
	for _, kv := range [][2]string{
		{"IMS_ORCH_CONTROLLER", s.Controller}, {"IMS_ORCH_TOKEN", s.Token},
		{"IMS_ORCH_INSTANCE_ID", s.InstanceID}, {"IMS_ORCH_DC", s.DC}, {"IMS_ORCH_VNF", s.VNF},
		{"IMS_ORCH_AGENT_ARGS", args},
	} {
		fmt.Fprintf(&b, "      %s=%s\n", kv[0], strconv.Quote(kv[1]))
	}
	fmt.Fprintf(&b, "  - path: %s\n    permissions: '0600'\n    owner: root:root\n    content: %s\n", AgentTokenFile, strconv.Quote(s.Token+"\n"))
	fmt.Fprintf(&b, "  - path: %s\n    permissions: '0644'\n    owner: root:root\n    content: |\n", AgentUnitFile)
	for _, line := range strings.Split(strings.TrimSuffix(agentUnit, "\n"), "\n") {
		if line == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("      " + line + "\n")
	}
	b.WriteString("runcmd:\n  - [systemctl, daemon-reload]\n  - [systemctl, enable, --now, ims-orch-agent.service]\n")
	return []byte(b.String())
}
