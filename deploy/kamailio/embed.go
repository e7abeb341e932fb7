// Package kamailio holds the real SIP parts' files for drivers/local: the
// Kamailio configuration template (P-CSCF and S-CSCF roles) and the SIPp
// scenarios used by the integration test and the benchmark, embedded so the
// binary and the tests need no path to the source tree.
package kamailio

import (
	"embed"
	"io/fs"
	"os"
)

// Files holds kamailio.cfg.tmpl and the SIPp scenarios sipp/*.xml.
//
//go:embed kamailio.cfg.tmpl sipp/*.xml
var Files embed.FS

// Template is the name of the Kamailio config template inside Files.
const Template = "kamailio.cfg.tmpl"

// WriteSIPpScenarios writes the SIPp scenarios (sipp/*.xml) into dir, which
// must not hold files of the same names, for a sipp run with -sf dir/NAME.
func WriteSIPpScenarios(dir string) error {
	sub, err := fs.Sub(Files, "sipp")
	if err != nil {
		return err
	}
	return os.CopyFS(dir, sub)
}
