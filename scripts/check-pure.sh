#!/usr/bin/env bash
# Dependencies point inward. Fails (exit 1) on any inversion among the
# non-test dependencies (go list -deps) of the module's packages:
#   1. pure packages (placement/..., predictor/...) import no I/O, network,
#      process, Raft, driver, API, controller or cmd package;
#   2. nothing under drivers/ imports controller/..., api/... or cmd/...
#      (the drivers see the world through their own interface and the clock);
#   3. the controllers themselves (every controller/ package but the
#      composition roots daemon, system, simulation, the SIP glue sipglue and
#      the data-plane glue dataplane: routing state → Open vSwitch)
#      see only the drivers interface: no driver backend (drivers/<name>),
#      no api/..., no composition root;
#   4. the API package (api/...) imports no driver and no composition root
#      (the daemon implements its Backend, not the other way round);
#   5. nothing imports cmd/... ;
#   6. the test-helper packages (a name ending in "test": apitest,
#      driverstest, netnstest, sipptest, ...) are imported by tests only;
#   7. only those packages import "testing" (a production package that does
#      links the testing package and its flags into the binaries).
# Run by `make lint` (CI). Prints every offending edge with the rule.
set -euo pipefail
cd "$(dirname "$0")/.."
M=$(go list -m)
roots="$M/controller/(daemon|system|simulation|sipglue|dataplane)"
go list -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./... | awk -v M="$M" -v roots="^$roots(/|\$)" '
function under(p, dir) { return p == M "/" dir || index(p, M "/" dir "/") == 1 }
{
  pkg = $1
  for (i = 2; i <= NF; i++) {
    d = $i
    if ((under(pkg, "placement") || under(pkg, "predictor")) &&
        (d ~ /^(net|net\/http|os\/exec)$/ || d ~ /^github\.com\/hashicorp\/raft/ ||
         under(d, "drivers") || under(d, "api") || under(d, "controller") || under(d, "cmd") || under(d, "clock")))
      { print "pure package imports an adapter: " pkg " -> " d; bad = 1 }
    if (under(pkg, "drivers") && (under(d, "controller") || under(d, "api") || under(d, "cmd")))
      { print "driver imports an outer package: " pkg " -> " d; bad = 1 }
    if (under(pkg, "controller") && pkg !~ roots &&
        ((under(d, "drivers") && d != M "/drivers") || under(d, "api") || d ~ roots))
      { print "controller imports a driver backend, the API or a composition root: " pkg " -> " d; bad = 1 }
    if (under(pkg, "api") && (under(d, "drivers") || d ~ roots))
      { print "API imports a driver or a composition root: " pkg " -> " d; bad = 1 }
    if (under(d, "cmd"))
      { print "package imports cmd: " pkg " -> " d; bad = 1 }
    if (index(d, M "/") == 1 && d ~ /test$/ && pkg !~ /test$/)
      { print "non-test code imports a test helper: " pkg " -> " d; bad = 1 }
  }
}
END { exit bad }
' || { echo "check-pure: dependencies must point inward (scripts/check-pure.sh)"; exit 1; }
# rule 7: direct imports only (a test helper's own "testing" is its business)
go list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... | awk -v M="$M" '
$1 !~ /test$/ {
  for (i = 2; i <= NF; i++) if ($i == "testing") { print "production package imports testing: " $1; bad = 1 }
}
END { exit bad }
' || { echo "check-pure: move test helpers to a <name>test package (scripts/check-pure.sh)"; exit 1; }
echo "check-pure: dependencies point inward (pure packages, drivers, controllers, cmd)"
