package driverstest

import (
	"testing"
	"time"
)

// PollAwait is an Env.Await for a real backend: it polls cond every 50 ms
// until it holds or limit has passed (a real process or cloud is involved,
// so a bounded poll on the real event is the only way to wait).
func PollAwait(limit time.Duration) func(t *testing.T, what string, cond func() bool) {
	return func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(limit); !cond(); {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v", what, limit)
			}
			time.Sleep(50 * time.Millisecond) // polling a real backend with a deadline
		}
	}
}
