package clock

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// Sleep returns when its time has come on the clock, and when its context
// ends before, with the context's error and its timer stopped.
func TestSleep(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), v, time.Second) }()
	for v.Pending() == 0 { // the sleeper has not set its timer yet
		select {
		case err := <-done:
			t.Fatalf("Sleep returned %v before its time", err)
		default:
			runtime.Gosched()
		}
	}
	v.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- Sleep(ctx, v, time.Hour) }()
	for v.Pending() == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep with its context cancelled: %v", err)
	}
	if n := v.Pending(); n != 0 {
		t.Fatalf("%d timers pending after a cancelled Sleep", n)
	}
}
