// Package lograte owns the rate limit of repeated log lines: a slog.Handler
// that passes at most Burst records of one message (level Warn and above)
// per Window and then drops the rest, counting them; the first record of the
// message that passes after a drop carries "suppressed" = how many were
// dropped. A fault that repeats every tick (a refused routing update, a
// failing launch) then costs a few lines per window, not gigabytes.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultBurst  = 10
	DefaultWindow = 10 * time.Second
)

// Config tunes a Handler.
type Config struct {
	// Burst is how many records of one message pass per window (default 10).
	Burst int
	// Window is the window (default 10 s).
	Window time.Duration
	// MinLevel is the lowest level limited (default slog.LevelWarn: info
	// and debug lines pass untouched).
	MinLevel *slog.Level
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type counter struct {
	start      time.Time
	passed     int
	suppressed int
}

type state struct {
	cfg Config
	mu  sync.Mutex
	by  map[string]*counter
}

// maxKeys bounds the messages tracked; beyond it the oldest windows are
// forgotten (a message is a constant string in this code base, so the set
// is small).
const maxKeys = 4096

// Handler wraps another slog.Handler.
type Handler struct {
	next slog.Handler
	st   *state
}

// New wraps next.
func New(next slog.Handler, cfg Config) *Handler {
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MinLevel == nil {
		l := slog.LevelWarn
		cfg.MinLevel = &l
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{next: next, st: &state{cfg: cfg, by: map[string]*counter{}}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < *h.st.cfg.MinLevel {
		return h.next.Handle(ctx, r)
	}
	pass, dropped := h.st.admit(r.Message)
	if !pass {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

// admit reports whether a record of msg passes and how many were dropped
// since the last one that passed.
func (s *state) admit(msg string) (bool, int) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.by[msg]
	if c == nil {
		if len(s.by) >= maxKeys {
			for k, v := range s.by {
				if now.Sub(v.start) >= s.cfg.Window {
					delete(s.by, k)
				}
			}
		}
		c = &counter{start: now}
		s.by[msg] = c
	}
	if now.Sub(c.start) >= s.cfg.Window {
		c.start, c.passed = now, 0
	}
	if c.passed >= s.cfg.Burst {
		c.suppressed++
		return false, 0
	}
	c.passed++
	d := c.suppressed
	c.suppressed = 0
	return true, d
}

// WithAttrs implements slog.Handler; the limit is shared.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup implements slog.Handler; the limit is shared.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}
