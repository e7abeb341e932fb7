package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
)

// status (stateSummary) shows each crash loop of GET /state: until when its
// replacements are held back, after how many failures, the last one.
func TestStateSummaryShowsCrashLoops(t *testing.T) {
	until := time.Date(2026, 12, 6, 10, 0, 12, 0, time.UTC)
	st := api.State{Backoffs: []api.Backoff{
		{DC: "tokyo", VNF: "P-CSCF", Failures: 2, Until: &until, LastFailure: "tokyo-P-CSCF-7 (driver reported error: boot failed)", Owed: 1},
		{DC: "london", VNF: "ids", Failures: 3, LastFailure: "london-ids-4 (no statistics for 3s)"},
	}}
	var b bytes.Buffer
	if err := stateSummary(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tokyo/P-CSCF: crash loop, 2 failure(s) in a row (the last tokyo-P-CSCF-7 (driver reported error: boot failed)); backing off until 10:00:12, 1 replacement(s) owed",
		"london/ids: crash loop, 3 failure(s) in a row (the last london-ids-4 (no statistics for 3s))\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("status output lacks %q:\n%s", want, b.String())
		}
	}
}
