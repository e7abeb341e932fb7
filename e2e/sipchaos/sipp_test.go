package sipchaos

// SIPp processes of the chaos test: one per traffic kind and P-CSCF, each
// with its own statistics and per-call response times (sipptest runs them).

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
)

// sippProc is one running SIPp.
type sippProc struct {
	name string
	*sipptest.Proc
}

// startSIPp runs sipp with args in a fresh dir (statistics and response
// times of every call written there); it is killed when the test ends.
func startSIPp(t *testing.T, name string, args ...string) *sippProc {
	t.Helper()
	p, err := sipptest.Start(t.TempDir(), sipptest.Options{Stats: true, RTTFreq: 1}, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(p.Kill)
	return &sippProc{name, p}
}

// sippResult sums one SIPp caller run.
type sippResult struct {
	Name                string
	Created, OK, Failed int
	Retrans             int
	// Calls are the successful calls' first response-time measures (rtd 1):
	// when the call started and how long the measured exchange took.
	Calls  []callTiming
	Errors string
}

type callTiming struct {
	Start time.Time
	Took  time.Duration
}

// wait waits (bounded by ctx) for the caller to finish and reads its results.
func (p *sippProc) wait(ctx context.Context) (sippResult, error) {
	res := sippResult{Name: p.name}
	_ = p.Wait(ctx) // SIPp exits 1 when some call failed: the counts tell
	st, err := p.Stats()
	if err != nil {
		return res, fmt.Errorf("%s: %v\n%s", p.name, err, p.Output(3000))
	}
	res.Created, res.OK, res.Failed, res.Retrans = st.Created, st.OK, st.Failed, st.Retrans
	rtts, _ := p.ResponseTimes(1)
	for _, m := range rtts {
		end := p.Started.Add(m.End)
		res.Calls = append(res.Calls, callTiming{Start: end.Add(-m.Took), Took: m.Took})
	}
	slices.SortFunc(res.Calls, func(a, b callTiming) int { return a.Start.Compare(b.Start) })
	if res.Failed > 0 {
		res.Errors = p.Errors(3000)
	}
	return res, nil
}
