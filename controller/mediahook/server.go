package mediahook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server serves a Hook over HTTP on a listener (the daemon's loopback port
// for the P-CSCFs' posts) and stops it without cutting a running post: a
// /start whose rules are being installed is answered before Stop returns,
// and no rule update outlives Stop, so the caller can close the data plane
// after Stop (http.Server.Close would return at once, cut the post and let
// its install race the plane's removal).
type Server struct {
	h    *Hook
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// Serve answers the hook's posts below prefix (e.g. "/media/v1") on ln
// until Stop.
func Serve(ln net.Listener, h *Hook, prefix string) *Server {
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", h.Handler(prefix))
	s := &Server{h: h, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // http.ErrServerClosed after Stop
	}()
	return s
}

// StopTimeout bounds the wait for running posts when Stop's context has no
// deadline: the hook's Programmer timeout (each post's rule update) plus a
// second for the answer. Stop then waits for the rule updates still
// running (Hook.Drain), each bounded by that timeout again: Stop returns
// within StopTimeout + the Programmer timeout (11 s with the default 5 s).
func (s *Server) StopTimeout() time.Duration { return s.h.cfg.Timeout + time.Second }

// Stop closes the listener, waits for the running posts (bounded by ctx,
// and by StopTimeout when ctx has no deadline), then detaches the hook's
// Programmer and waits for the rule updates still running (Hook.Drain):
// the removals of the ends answered so far and the installs of posts cut
// by the bound. Posts still running when the bound expires are cut (their
// connections closed) and Stop returns an error saying so; no install
// outlives Stop, so the caller may remove the data plane after it.
func (s *Server) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.StopTimeout())
		defer cancel()
	}
	var err error
	if serr := s.srv.Shutdown(ctx); serr != nil {
		err = fmt.Errorf("media hook: posts still running when the stop's bound expired (their installs are waited for): %w", serr)
		_ = s.srv.Close()
	}
	<-s.done
	s.h.Drain() // each rule update is bounded by the Programmer timeout
	return err
}
