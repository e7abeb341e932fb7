package daemon

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// FailpointEnv names the environment variable of the chaos failpoint: the
// path of a file that the cluster chaos test (e2e/chaos) writes to kill this
// process with SIGKILL at a precise point of a round. It is read only when
// the variable is set; production nodes never set it.
//
// File content: "kill-after-step N" (N = 1..5): right after this node's
// round engine (the leader) commits step N of a round, the file is removed
// and the process sends itself SIGKILL — a real kill -9 at a known step,
// which polling from outside cannot hit (a round's five steps take a few
// milliseconds).
const FailpointEnv = "IMS_ORCH_FAILPOINT_FILE"

// failpointHooks are the round engine's hooks with the failpoint armed when
// FailpointEnv is set.
func (d *Daemon) failpointHooks() global.Hooks {
	path := os.Getenv(FailpointEnv)
	if path == "" {
		return global.Hooks{}
	}
	d.log.Warn("chaos failpoint armed: this process kills itself when the failpoint file says so", "file", path)
	return global.Hooks{StepCommitted: func(round uint64, step protocol.Step) {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "kill-after-step %d", &n); err != nil || protocol.Step(n) != step {
			return
		}
		_ = os.Remove(path)
		d.log.Warn("chaos failpoint: SIGKILL after step", "round", round, "step", step.String())
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}}
}
