package ovs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// ErrMonitorNotArmed is LearnedMonitor.Learned's error while the monitor
// does not follow the switch (starting, restarting, ovs-vswitchd down): the
// learned rules are unknown then.
var ErrMonitorNotArmed = errors.New("learned-rule monitor not armed")

// ErrMonitorPaused is why a monitor stopped when ovs-vswitchd paused it:
// its reader fell behind and the switch's queue of unsent flow-monitor
// events went over its limit (128 KiB in Open vSwitch's connmgr), so the
// switch withholds ADDED/MODIFIED events until the queue drains. The monitor
// restarts and reads the whole table again.
var ErrMonitorPaused = errors.New("paused by the switch: flow-monitor events were withheld")

// LearnedMonitor follows the rules a switch learns (cookie CookieLearned)
// through one persistent `ovs-ofctl monitor` of table 1 (OpenFlow flow
// monitor: one event per rule added, modified or deleted, e.g. idled out),
// so reading them runs no process. On every (re)start of the monitor it
// reads the whole table once (Switch.Learned) and applies the events that
// came meanwhile on top; it restarts when the monitor exits (ovs-vswitchd
// restarted) or reports it paused (ErrMonitorPaused: its reader fell
// behind, and the switch withholds events until the reader has caught up).
// Between a stop and the next complete read, Learned says
// ErrMonitorNotArmed. Restarts in a row back off (MonitorConfig) and are
// counted (Restarts). On PAUSED it restarts rather than waiting for the
// switch's catch-up before event=RESUMED: the fresh dump is the table,
// whatever the catch-up would or would not have said of rules deleted while
// paused; the backoff bounds what that costs under sustained churn.
type LearnedMonitor struct {
	s       *Switch
	backoff restartBackoff
	clk     clock.Clock
	onErr   func(error)
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	armed    bool
	armedAt  time.Time
	rules    map[string]learnedEntry
	starts   int // monitors started
	restarts int // monitors that stopped and were (to be) started again
	pauses   int // of them, stopped by the switch's PAUSED
	pid      int // the running monitor process (0: none)
}

// MonitorConfig configures a LearnedMonitor.
type MonitorConfig struct {
	// Retry is the wait before the first restart after a monitor stops;
	// each further restart in a row doubles it, up to MaxRetry (32 × Retry
	// if 0). A monitor that stayed armed for MaxRetry or longer before it
	// stopped starts the doubling over. So sustained churn that pauses
	// every new monitor (each restart's dump paused again) restarts it at
	// most once per MaxRetry, not once per Retry forever.
	Retry, MaxRetry time.Duration
	// Clock times the waits (clock.Real if nil).
	Clock clock.Clock
	// OnErr (may be nil) receives why a monitor stopped.
	OnErr func(error)
}

// restartBackoff is the wait before each restart: base doubled per restart
// in a row, capped at max; a monitor armed for max or longer resets it.
type restartBackoff struct {
	base, max time.Duration
	streak    int
}

// next returns the wait before the restart of a monitor that had been
// armed for armedFor (0: never armed) when it stopped.
func (b *restartBackoff) next(armedFor time.Duration) time.Duration {
	if armedFor >= b.max {
		b.streak = 0
	}
	d := b.base
	for i := 0; i < b.streak && d < b.max; i++ {
		d *= 2
	}
	b.streak++
	return min(d, b.max)
}

type learnedEntry struct {
	f   LearnedFlow
	err error
}

// MonitorLearned starts following s's learned rules until Close; a monitor
// that fails or exits is started again after retry (doubling per restart in
// a row, MonitorConfig). onErr (may be nil) receives why a monitor stopped.
func (s *Switch) MonitorLearned(retry time.Duration, onErr func(error)) *LearnedMonitor {
	return s.MonitorLearnedWith(MonitorConfig{Retry: retry, OnErr: onErr})
}

// MonitorLearnedWith is MonitorLearned with every setting of cfg.
func (s *Switch) MonitorLearnedWith(cfg MonitorConfig) *LearnedMonitor {
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 32 * cfg.Retry
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &LearnedMonitor{s: s, backoff: restartBackoff{base: cfg.Retry, max: cfg.MaxRetry}, clk: cfg.Clock,
		onErr: cfg.OnErr, cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

// Restarts returns how many times a monitor stopped and was restarted (or
// waits to be), and how many of those the switch's PAUSED caused.
func (m *LearnedMonitor) Restarts() (restarts, paused int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts, m.pauses
}

// Close stops the monitor and waits for its process to end.
func (m *LearnedMonitor) Close() {
	m.cancel()
	<-m.done
}

// Learned returns the rules the switch holds now, as Switch.Learned would
// read them (an unreadable rule is in Skipped), or ErrMonitorNotArmed.
func (m *LearnedMonitor) Learned() (LearnedRules, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.armed {
		return LearnedRules{}, ErrMonitorNotArmed
	}
	keys := make([]string, 0, len(m.rules))
	for k := range m.rules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var r LearnedRules
	for _, k := range keys {
		if e := m.rules[k]; e.err != nil {
			r.Skipped = append(r.Skipped, e.err)
		} else {
			r.Flows = append(r.Flows, e.f)
		}
	}
	return r, nil
}

// Done is closed once the monitor has stopped for good (Close): its
// process reaped, its goroutines ended.
func (m *LearnedMonitor) Done() <-chan struct{} { return m.done }

// Pid returns the PID of the running `ovs-ofctl monitor` process, 0 when
// none runs (between restarts, after Close).
func (m *LearnedMonitor) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pid
}

// Armed reports whether Learned follows the switch now.
func (m *LearnedMonitor) Armed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.armed
}

func (m *LearnedMonitor) run(ctx context.Context) {
	defer close(m.done)
	for {
		err := m.follow(ctx)
		m.mu.Lock()
		var armedFor time.Duration
		if m.armed {
			armedFor = m.clk.Now().Sub(m.armedAt)
		}
		m.armed, m.rules = false, nil
		if ctx.Err() == nil {
			m.restarts++
			if errors.Is(err, ErrMonitorPaused) {
				m.pauses++
			}
		}
		m.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		wait := m.backoff.next(armedFor)
		if m.onErr != nil {
			m.onErr(fmt.Errorf("learned-rule monitor of %s (restart in %v): %w", m.s.bridge, wait, err))
		}
		due := make(chan struct{})
		t := m.clk.AfterFunc(wait, func() { close(due) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-due:
		}
	}
}

// monitorEvent is one flow-monitor event line of a learned rule.
type monitorEvent struct {
	deleted bool
	key     string
	entry   learnedEntry
}

// follow runs one monitor process until it fails, exits or ctx ends.
func (m *LearnedMonitor) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, err := command(ctx, m.s.d.cfg.Dir, "ovs-ofctl", "-O", "OpenFlow15", "--no-names", "monitor", m.s.d.mgmt(m.s.bridge), "watch:table=1")
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.mu.Lock()
	m.starts++
	m.pid = cmd.Process.Pid
	m.mu.Unlock()
	// on return: the process is killed (ctx, by its PID) and reaped, which
	// closes its pipes, so both readers end; follow waits for them
	var readers sync.WaitGroup
	defer func() {
		cancel()
		_ = cmd.Wait()
		readers.Wait()
		m.mu.Lock()
		m.pid = 0
		m.mu.Unlock()
	}()
	// the reply to the monitor request (stdout; its INITIAL rules are not
	// used: the dump below is the base) says the monitor is registered:
	// every change after it comes as an event (stderr)
	ready := make(chan struct{})
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			close(ready)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	events := make(chan monitorEvent, 4096)
	stopped := make(chan error, 1)
	go func() {
		defer readers.Done()
		defer close(events)
		stopped <- readMonitorLines(stderr, func(ev monitorEvent) bool {
			select {
			case events <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case <-ready:
	case err := <-stopped:
		return err
	case <-timeout.C:
		return errors.New("no reply to the monitor request within 10 s")
	case <-ctx.Done():
		return ctx.Err()
	}
	base, err := m.s.dumpLearned(ctx)
	if err != nil {
		return err
	}
	// the events since the registration, applied on the dump in their
	// order, give the table now: a change before the dump is already in it
	// and its event repeats it; a change after it is not, and its event
	// brings it
	pending := len(events)
	m.mu.Lock()
	m.rules = base
	for i := 0; i < pending; i++ {
		m.applyLocked(<-events)
	}
	m.armed, m.armedAt = true, m.clk.Now()
	m.mu.Unlock()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return <-stopped
			}
			m.mu.Lock()
			m.applyLocked(ev)
			m.mu.Unlock()
		case err := <-stopped:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errStopRead is readMonitorLines' result when emit ended the read.
var errStopRead = errors.New("read stopped")

// readMonitorLines reads `ovs-ofctl monitor`'s event lines (its stderr)
// from r and gives each learned-rule event to emit, in order, until emit
// returns false (errStopRead), the switch pauses the monitor (a PAUSED
// line: ErrMonitorPaused; the lines after it are not read) or r ends (an
// error naming the last line that was no event: why the monitor ended).
func readMonitorLines(r io.Reader, emit func(monitorEvent) bool) error {
	var last string // the last other line: why the monitor stopped
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if isPaused(l) {
			return ErrMonitorPaused
		}
		ev, ok := parseMonitorEvent(l)
		if !ok {
			if l != "" && !strings.HasPrefix(l, "OFPST_FLOW_MONITOR reply") && !strings.HasPrefix(l, "NXST_FLOW_MONITOR reply") {
				last = l
			}
			continue
		}
		if !emit(ev) {
			return errStopRead
		}
	}
	return fmt.Errorf("ovs-ofctl monitor ended: %s", last)
}

func (m *LearnedMonitor) applyLocked(ev monitorEvent) {
	if ev.deleted {
		delete(m.rules, ev.key)
	} else {
		m.rules[ev.key] = ev.entry
	}
}

// parseMonitorEvent reads a flow-monitor event line of a learned rule
// ("event=ADDED|MODIFIED|DELETED … cookie=0x… <match> actions=…"); other
// lines (headers, INITIAL, other cookies) give false.
func parseMonitorEvent(l string) (monitorEvent, bool) {
	var ev monitorEvent
	var kind string
	var cookie uint64
	var hasCookie bool
	head, _, _ := strings.Cut(l, " actions=")
	for _, tok := range strings.Fields(head) {
		switch {
		case strings.HasPrefix(tok, "event="):
			kind = strings.TrimPrefix(tok, "event=")
		case strings.HasPrefix(tok, "cookie="):
			v, err := strconv.ParseUint(strings.TrimPrefix(tok, "cookie="), 0, 64)
			cookie, hasCookie = v, err == nil
		}
	}
	if !hasCookie || cookie&cookieKindMask != CookieLearned {
		return ev, false
	}
	switch kind {
	case "ADDED", "MODIFIED":
		f, err := parseLearnedLine(l)
		if err != nil {
			err = fmt.Errorf("flow-monitor event: %w", err)
		}
		ev.entry = learnedEntry{f: f, err: err}
	case "DELETED":
		ev.deleted = true
	default:
		return ev, false
	}
	ev.key = learnedKey(l)
	return ev, true
}

// dumpLearned reads the learned rules keyed by their match (one dump).
func (s *Switch) dumpLearned(ctx context.Context) (map[string]learnedEntry, error) {
	out, err := s.dumpLearnedText(ctx)
	if err != nil {
		return nil, err
	}
	rules := map[string]learnedEntry{}
	eachLearned(out, func(key string, e learnedEntry) { rules[key] = e })
	return rules, nil
}

// isPaused reports whether l is the switch's notice that it paused the
// monitor.
func isPaused(l string) bool { return strings.Contains(l, "event=PAUSED") }
