package netns

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// runReadReady starts readReady on a pipe whose writing end write fills
// (and closes); it returns ready, closed when readReady saw the ready
// line, returned, closed when readReady returned, and wrote, closed when
// write returned.
func runReadReady(t *testing.T, write func(w io.Writer)) (ready, returned, wrote <-chan struct{}) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rd, ret, wr := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(wr)
		defer w.Close()
		write(w)
	}()
	go func() {
		defer close(ret)
		readReady(r, rd)
	}()
	return rd, ret, wr
}

// await fails the test unless ch closes (10 s only end a failing run).
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// The ready line is found after a stdout line longer than 64 KiB (and
// after chatter, with white space around it). Before (revRR LOW-1), the
// bufio.Scanner reading it stopped at the long line (token too long): the
// ready line was never seen, and Create failed after its ready timeout.
func TestReadReadyFindsTheReadyLineAfterALongLine(t *testing.T) {
	ready, returned, _ := runReadReady(t, func(w io.Writer) {
		_, _ = io.WriteString(w, "starting\n"+strings.Repeat("x", 70_000)+"\n  ready  \n")
	})
	select {
	case <-ready:
	case <-returned:
		t.Fatal("stdout ended without the ready line being seen")
	case <-time.After(10 * time.Second):
		t.Fatal("the ready line was not seen")
	}
}

// A long line whose last buffer-full ends in "ready" is not the ready
// line (readReady reads 4 KiB at a time).
func TestReadReadyDoesNotTakeTheEndOfALongLine(t *testing.T) {
	ready, returned, _ := runReadReady(t, func(w io.Writer) {
		_, _ = io.WriteString(w, strings.Repeat("x", 4096)+"ready\n"+strings.Repeat("y", 4096)+"\nready-not\n")
	})
	await(t, returned, "readReady did not return at the end of stdout")
	select {
	case <-ready:
		t.Fatal("the end of a long line was taken for the ready line")
	default:
	}
}

// After the ready line, stdout is read to its end: a forwarder writing 2 MB
// after it (far more than a pipe holds) is not blocked (revRR LOW-2:
// nothing tested it).
func TestReadReadyDrainsStdoutAfterReady(t *testing.T) {
	ready, returned, wrote := runReadReady(t, func(w io.Writer) {
		_, _ = io.WriteString(w, "ready\n")
		_, _ = w.Write(make([]byte, 2_000_000))
	})
	await(t, ready, "the ready line was not seen")
	await(t, wrote, "the forwarder blocked writing 2 MB after its ready line: stdout not drained")
	await(t, returned, "readReady did not return at the end of stdout")
}

// A negative ready timeout is refused, naming the field; 0 is the default.
func TestReadyTimeoutIsValidated(t *testing.T) {
	cfg := DriverConfig{Daemon: &ovs.Daemon{}, Bridges: map[string]string{"dc0": "br0"}, Forwarder: []string{"fwd"}, ReadyTimeout: -time.Second}
	if _, err := NewDriver(cfg); err == nil || !strings.Contains(err.Error(), "ReadyTimeout") {
		t.Fatalf("NewDriver with ReadyTimeout -1s: %v, want an error naming ReadyTimeout", err)
	}
	cfg.ReadyTimeout = 0
	d, err := NewDriver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()
	if d.cfg.ReadyTimeout != DefaultReadyTimeout {
		t.Fatalf("ReadyTimeout 0 became %v, want %v", d.cfg.ReadyTimeout, DefaultReadyTimeout)
	}
	if _, err := Create(context.Background(), nil, "br0", "n1", Firewall, 1, 2, []string{"fwd"}, -time.Second); err == nil || !strings.Contains(err.Error(), "readyTimeout") {
		t.Fatalf("Create with readyTimeout -1s: %v, want an error naming readyTimeout", err)
	}
}
