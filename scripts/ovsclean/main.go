// Command ovsclean removes what real data-plane runs that died without
// stopping left on this machine (a test binary killed at its timeout, a
// crashed `ims-orch serve --driver local`): for each name prefix with a lock
// file in /run/ims-orch-ovs that no live process holds, the processes in the
// prefix's network namespaces (its ovsdb-server, ovs-vswitchd and DP
// forwarders), those namespaces and the lock file (ovs.CleanStale). Runs
// that are alive hold their prefix's lock and are never touched; nothing is
// matched beyond a dead run's own prefix. As root:
//
//	go run ./scripts/ovsclean
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ims-orch/ims-orch/drivers/ovs"
)

func main() {
	cleaned, err := ovs.CleanStale(context.Background(), ovs.AllPrefixes)
	if len(cleaned) == 0 {
		fmt.Println("ovsclean: no stale prefix in", ovs.LockDir)
	} else {
		fmt.Printf("ovsclean: removed the leftovers of %d dead run(s): %s\n", len(cleaned), strings.Join(cleaned, " "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ovsclean:", err)
		os.Exit(1)
	}
}
