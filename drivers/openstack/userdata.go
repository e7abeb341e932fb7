package openstack

import (
	"fmt"
	"strconv"
	"strings"
)

// AgentSettings is what an instance's statistics agent needs to report to
// its datacenter's local controller.
type AgentSettings struct {
	Controller string // local controller address (host:port or URL)
	Token      string // bearer token the agent presents
	InstanceID string
	DC         string
	VNF        string
}

// AgentUserData renders cloud-init user data that writes the agent's
// settings to /etc/ims-orch/agent.env (mode 0600, root only); the image's
// agent unit reads that file. Values are quoted for a shell env file.
func AgentUserData(s AgentSettings) []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\nwrite_files:\n  - path: /etc/ims-orch/agent.env\n    permissions: '0600'\n    owner: root:root\n    content: |\n")
	for _, kv := range [][2]string{
		{"IMS_ORCH_CONTROLLER", s.Controller}, {"IMS_ORCH_TOKEN", s.Token},
		{"IMS_ORCH_INSTANCE_ID", s.InstanceID}, {"IMS_ORCH_DC", s.DC}, {"IMS_ORCH_VNF", s.VNF},
	} {
		fmt.Fprintf(&b, "      %s=%s\n", kv[0], strconv.Quote(kv[1]))
	}
	return []byte(b.String())
}
