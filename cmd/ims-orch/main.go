// Command ims-orch is the ScalIMS orchestrator: offline planning, prediction
// backtests, the controller daemon and the API client. Each subcommand lives in
// its own file and registers itself on rootCmd; the command code only parses
// flags, calls packages and prints.
package main

import (
	"errors"
	"fmt"
	"os"
	// The time zones of policy.declaredProfile's timeZone, built in: the
	// binary does not depend on the host's zoneinfo.
	_ "time/tzdata"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code (2 for bad input).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as bad input: exit code 2.
func usageErr(err error) error { return &exitError{code: 2, err: err} }

var rootCmd = &cobra.Command{
	Use:           "ims-orch",
	Short:         "Scale a virtualized IMS across datacenters (ScalIMS)",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ims-orch:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
