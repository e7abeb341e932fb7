package fsm

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// SlogLogger adapts a slog.Logger to the hclog.Logger raft logs through, so
// raft's own lines (elections, leadership changes, refused RPCs, snapshot
// work) go to the daemon's log: raft's trace and debug at slog's debug, its
// info, warn and error at the same slog levels. Attributes carry a
// "component": "raft" and raft's logger name.
func SlogLogger(l *slog.Logger) hclog.Logger {
	return &slogHC{Logger: hclog.NewNullLogger(), l: l.With("component", "raft"), name: "raft"}
}

type slogHC struct {
	hclog.Logger // the methods not overridden (level setting, standard loggers): a null logger
	l            *slog.Logger
	name         string
	implied      []any
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *slogHC) Log(level hclog.Level, msg string, args ...any) {
	sl := slogLevel(level)
	if !h.l.Enabled(context.Background(), sl) {
		return
	}
	h.l.Log(context.Background(), sl, msg, args...)
}

func (h *slogHC) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHC) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHC) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHC) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHC) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHC) enabled(l hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(l))
}

func (h *slogHC) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *slogHC) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *slogHC) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *slogHC) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *slogHC) IsError() bool { return h.enabled(hclog.Error) }

func (h *slogHC) ImpliedArgs() []any { return h.implied }
func (h *slogHC) Name() string       { return h.name }

func (h *slogHC) With(args ...any) hclog.Logger {
	return &slogHC{Logger: h.Logger, l: h.l.With(args...), name: h.name, implied: append(append([]any(nil), h.implied...), args...)}
}

func (h *slogHC) Named(name string) hclog.Logger {
	n := name
	if h.name != "" {
		n = h.name + "." + name
	}
	return &slogHC{Logger: h.Logger, l: h.l.With("logger", n), name: n, implied: h.implied}
}

func (h *slogHC) ResetNamed(name string) hclog.Logger {
	return &slogHC{Logger: h.Logger, l: h.l.With("logger", name), name: name, implied: h.implied}
}
