package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBurstThenSuppressedCount(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	h := New(slog.NewTextHandler(&buf, nil), Config{Burst: 3, Window: 10 * time.Second, Now: func() time.Time { return now }})
	log := slog.New(h).With("dc", "a")
	for range 1000 {
		log.Warn("routing table update failed")
		log.Info("scaling decision")
	}
	if n := strings.Count(buf.String(), "routing table update failed"); n != 3 {
		t.Fatalf("%d warn lines in the first window, want 3", n)
	}
	if n := strings.Count(buf.String(), "scaling decision"); n != 1000 {
		t.Fatalf("%d info lines, want all 1000", n)
	}
	buf.Reset()
	now = now.Add(10 * time.Second)
	log.Warn("routing table update failed")
	if !strings.Contains(buf.String(), "suppressed=997") {
		t.Fatalf("no suppressed count: %s", buf.String())
	}
	buf.Reset()
	log.Error("another message")
	if strings.Contains(buf.String(), "suppressed") {
		t.Fatalf("other message carries a count: %s", buf.String())
	}
}
