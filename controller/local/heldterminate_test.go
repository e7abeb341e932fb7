package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// heldDriver is a fake cloud whose Terminate returns err (nil: the fake's).
type heldDriver struct {
	*fake.Driver
	mu  sync.Mutex
	err error
}

func (d *heldDriver) Terminate(ctx context.Context, dc, id string) error {
	d.mu.Lock()
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return d.Driver.Terminate(ctx, dc, id)
}

// syncBuf is a log sink the controller's goroutines may share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// A Terminate the driver held back (drivers.ErrBackoff: nothing tried, the
// failure that started the backoff was reported) is logged at Debug and
// is not one of the tick's errors; the instance is kept and terminated
// again. A Terminate that failed is logged at Error and is an error.
func TestTerminateHeldBackIsNotAFailure(t *testing.T) {
	clk := clock.NewVirtual(t0)
	fd, err := fake.New(clk, fake.Options{BootDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	drv := &heldDriver{Driver: fd}
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := fwConfig(2)
	cfg.Sink, cfg.Paths = &recSink{}, &recPaths{}
	c, err := New(cfg, drv, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	clk.Advance(2 * time.Second)
	ids := c.Routable("firewall")
	if len(ids) != 2 {
		t.Fatalf("%d routable, want 2", len(ids))
	}
	id := ids[0].ID
	terminate := func(held error) ([]error, string) {
		drv.mu.Lock()
		drv.err = held
		drv.mu.Unlock()
		logs.take()
		_, errs := c.exec([]op{{kind: opTerminate, id: id}})
		return errs, logs.take()
	}
	errs, out := terminate(fmt.Errorf("delete of server x: %w", drivers.ErrBackoff))
	if len(errs) != 0 || strings.Contains(out, "level=ERROR") || !strings.Contains(out, "level=DEBUG msg=\"terminate held back") {
		t.Fatalf("held back: errors %v, log %q: want none, one Debug line", errs, out)
	}
	errs, out = terminate(errors.New("refused"))
	if len(errs) != 1 || !strings.Contains(out, "level=ERROR msg=\"terminate failed") {
		t.Fatalf("failed: errors %v, log %q: want the error, one Error line", errs, out)
	}
	c.mu.Lock()
	kept := c.insts[id] != nil
	c.mu.Unlock()
	if !kept {
		t.Fatalf("%s forgotten after a Terminate that did not delete it", id)
	}
	if errs, _ = terminate(nil); len(errs) != 0 {
		t.Fatalf("terminate: %v", errs)
	}
}
