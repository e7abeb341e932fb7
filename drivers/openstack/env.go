package openstack

import "os"

// getenv is a variable so tests can pin the environment they read.
var getenv = os.Getenv

func envCloud() string { return getenv("OS_CLOUD") }
