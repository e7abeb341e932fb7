// Command ims-dpfwd is the process of one DP VNF instance (drivers/netns):
// it forwards frames from interface -in to -out inside the instance's
// network namespace (drivers/netns/dpfwd). `ims-orch dp-forward` is the same
// program; tests build this smaller binary.
package main

import (
	"os"

	"github.com/ims-orch/ims-orch/drivers/netns/dpfwd"
)

func main() { os.Exit(dpfwd.Main(os.Args[1:])) }
