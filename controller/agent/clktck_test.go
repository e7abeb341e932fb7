package agent

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

func TestClkTckFrom(t *testing.T) {
	for name, c := range map[string]struct {
		auxv [][2]uintptr
		want int
		err  string
	}{
		"250":          {[][2]uintptr{{6, 4096}, {atClkTck, 250}, {0, 0}}, 250, ""},
		"100":          {[][2]uintptr{{atClkTck, 100}}, 100, ""},
		"missing":      {[][2]uintptr{{6, 4096}, {0, 0}}, 0, "no AT_CLKTCK"},
		"zero":         {[][2]uintptr{{atClkTck, 0}}, 0, "AT_CLKTCK 0: not a tick rate"},
		"absurd":       {[][2]uintptr{{atClkTck, 1 << 40}}, 0, "not a tick rate"},
		"empty vector": {nil, 0, "0 entries"},
	} {
		got, err := clkTckFrom(c.auxv)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %d, %v; want %d, error with %q", name, got, err, c.want, c.err)
		}
	}
}

// ClkTck is what the C library's sysconf(_SC_CLK_TCK) says (getconf).
func TestClkTckIsTheSystems(t *testing.T) {
	got, err := ClkTck()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		t.Skipf("getconf CLK_TCK: %v", err)
	}
	want, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("getconf CLK_TCK: %q: %v", out, err)
	}
	if got != want {
		t.Fatalf("ClkTck() = %d, getconf CLK_TCK = %d", got, want)
	}
}

// An agent without ClkTck takes the system's (it assumed 100), and fails
// to start when the system's is unknown.
func TestAgentTakesTheSystemsClkTck(t *testing.T) {
	defer func(f func() (int, error)) { clkTck = f }(clkTck)
	cfg := Config{ID: "p1", Pid: 42, Proc: procFS([2]uint64{1, 1}, [2]uint64{1, 1}, true), Counters: &fakeCounters{vals: map[string]int64{}},
		Clock: clock.NewVirtual(time.Unix(0, 0))}
	clkTck = func() (int, error) { return 250, nil }
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New with the system's ClkTck 250: %v", err)
	}
	if a.cfg.ClkTck != 250 {
		t.Fatalf("New: ClkTck %d; want the system's 250", a.cfg.ClkTck)
	}
	clkTck = func() (int, error) { return 0, errors.New("no auxiliary vector") }
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "ClkTck") {
		t.Fatalf("New with the system's ticks unknown: %v, want an error naming ClkTck", err)
	}
	cfg.ClkTck = 100 // given: the system's is not asked
	if a, err := New(cfg); err != nil || a.cfg.ClkTck != 100 {
		t.Fatalf("New with ClkTck 100: %v", err)
	}
}
