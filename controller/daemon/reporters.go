package daemon

import (
	"fmt"

	"github.com/ims-orch/ims-orch/controller/transport"
)

// Per-node reporter credentials (issue 19; docs/operations.md "Reports from
// other processes"): with role.reportersFile a global node accepts a
// workload report only with the token of a reporter listed there and only
// for that reporter's datacenters; the shared protocol token no longer
// carries reports. A node's reporter presents role.reportTokenFile (default:
// the protocol token).

// serveWorkloadReports mounts transport.WorkloadPath on a global node.
func (d *Daemon) serveWorkloadReports(protocolToken string) error {
	f := d.cfg.Role.ReportersFile
	if protocolToken == "" && f == "" {
		d.log.Warn("role.protocolTokenFile is not set: this global node takes no workload reports from other nodes")
		return nil
	}
	tok := protocolToken
	if tok == "" {
		tok = "-" // only the reporters' own tokens are accepted below
	}
	h, err := transport.NewWorkloadHandler(engineIntake{d.engine, d.store}, tok)
	if err != nil {
		return err
	}
	if f != "" {
		creds, err := transport.LoadReporterCreds(f)
		if err != nil {
			return fmt.Errorf("role.reportersFile: %w", err)
		}
		h = h.WithReporters(creds)
	}
	d.mux.Handle(transport.WorkloadPath, h)
	return nil
}

// reportToken is the token this node's reporter presents.
func (d *Daemon) reportToken(protocolToken string) (string, error) {
	if f := d.cfg.Role.ReportTokenFile; f != "" {
		return readToken("role.reportTokenFile", f)
	}
	return protocolToken, nil
}
