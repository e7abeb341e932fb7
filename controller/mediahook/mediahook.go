// Package mediahook turns what the P-CSCFs see of a call into the data
// plane's Table 1 mappings (paper 4.4): the P-CSCF of each side posts, at the
// call's 200 OK, where its user sends and receives media (from the SDP) and
// its own datacenter; once both sides of a Call-ID are known the call is
// opened in the data plane (routing.Call with each side's entry DC and entry
// address), and it is closed when either P-CSCF reports the dialog's end (BYE,
// dialog timeout, failed dialog).
//
// The HTTP side is the form the Kamailio template's media block posts
// (deploy/kamailio, http_client):
//
//	POST <base>/dc/<dc>/start   role=caller|callee&call=<Call-ID in hex>&ip=<IPv4>&port=<1..65535>
//	POST <base>/dc/<dc>/update  role=caller|callee&call=<Call-ID in hex>&ip=<IPv4>&port=<1..65535>
//	POST <base>/dc/<dc>/end     role=caller|callee&call=<Call-ID in hex>
//
// An update (session 16, an addition to v1) says that one side's media is
// now at another address or port (a re-INVITE's offer/answer): the call's
// new rules are installed (the post waits for them, as a completing start
// does) and the previous rules stay Config.RetireAfter longer, for the
// packets the side sent from its old endpoint before it learnt the answer;
// an update naming the media the call has changes nothing. An /end
// closes the call at once; the rules of a call an update replaced stay
// until that update's retire (at most RetireAfter after the update), the
// end does not bring it forward (the plane's takeover handles a newer call
// reusing their 5-tuple, and Drain stops the pending retires). An update is
// refused (409, ErrRefused) when the call is not open (it never starts a
// call: a delayed offer's first media is a /start) or when the posting
// datacenter is not the one of the half it would replace (a P-CSCF speaks
// for its own users only). A daemon older than session 16 answers an
// update 400 (`path: operation "update" is not start or end`); the
// P-CSCF's call goes on as before (its media change gets no rules).
//
// The caller's P-CSCF posts second (the 200 reaches it last) and gets its
// answer only once the call's rules are installed, so the caller receives
// the 200, and starts sending, when its media has a path. An end is
// answered at once and its rules are removed in the background: nothing
// waits for them, and each hook request blocks one of the P-CSCF's few
// workers (a later post of the same Call-ID waits for the removal; a
// newer call of the same 5-tuple keeps its rules whatever the order: the
// Programmer routes each 5-tuple for its newest open call). Media is symmetric
// RTP: a side's send port is its receive port. The package owns the pairing of
// the two halves and their expiry; the Programmer (the real data plane)
// owns the rules.
package mediahook

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/routing"
)

// Programmer installs and removes a call's media path.
type Programmer interface {
	OpenCall(ctx context.Context, c routing.Call) error
	CloseCall(ctx context.Context, c routing.Call) error
}

// Role is the side of the call a P-CSCF serves.
type Role string

// Roles.
const (
	Caller Role = "caller"
	Callee Role = "callee"
)

// Half is one side of a call as its P-CSCF reported it.
type Half struct {
	DC   int
	IP   routing.IPv4
	Port uint16
}

// Request is one parsed post.
type Request struct {
	Op   string // "start", "update" or "end"
	DC   int
	Role Role
	Call string // the Call-ID
	Half Half   // start and update
}

// Parse reads a post: path is the URL path below the hook's base
// ("/dc/<dc>/start"), form its form values; n is the number of datacenters.
// Errors name the field and the reason.
func Parse(path string, form url.Values, n int) (Request, error) {
	var r Request
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) != 3 || parts[0] != "dc" {
		return r, fmt.Errorf("path: %q is not /dc/<dc>/start, /dc/<dc>/update or /dc/<dc>/end", path)
	}
	dc, err := strconv.Atoi(parts[1])
	if err != nil || dc < 0 || dc >= n {
		return r, fmt.Errorf("path: datacenter %q is not one of 0..%d", parts[1], n-1)
	}
	r.DC, r.Op = dc, parts[2]
	if !validOp(r.Op) {
		return r, fmt.Errorf("path: operation %q is not start, update or end", r.Op)
	}
	switch role := Role(form.Get("role")); role {
	case Caller, Callee:
		r.Role = role
	default:
		return r, fmt.Errorf("role: %q is not caller or callee", form.Get("role"))
	}
	id, err := hex.DecodeString(form.Get("call"))
	if err != nil || len(id) == 0 || len(id) > 1024 {
		return r, fmt.Errorf("call: %q is not a hex-encoded Call-ID of 1..1024 bytes", clip(form.Get("call")))
	}
	r.Call = string(id)
	if r.Op == "end" {
		return r, nil
	}
	ip, err := routing.ParseIPv4(form.Get("ip"))
	if err != nil {
		return r, fmt.Errorf("ip: %q is not an IPv4 address (SDP c= line)", clip(form.Get("ip")))
	}
	if ip == 0 {
		return r, errors.New(`ip: "0.0.0.0" is no media endpoint (an RFC 2543 hold)`)
	}
	port, err := strconv.ParseUint(form.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return r, fmt.Errorf("port: %q is not a media port 1..65535 (SDP m= line)", clip(form.Get("port")))
	}
	r.Half = Half{DC: dc, IP: ip, Port: uint16(port)}
	return r, nil
}

func validOp(op string) bool { return op == "start" || op == "update" || op == "end" }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Config creates a Hook.
type Config struct {
	// DCs is the number of datacenters; EntryIP gives each one's entry
	// address (the address its users send media to).
	DCs     int
	EntryIP func(dc int) routing.IPv4
	Clock   clock.Clock
	// PendingTTL: a half whose other side never reports is dropped after
	// this long (64 s, SIP's transaction timeout, when zero).
	PendingTTL time.Duration
	// Timeout bounds one Programmer call (5 s when zero).
	Timeout time.Duration
	// RetireAfter: an update's previous rules are removed this long after
	// the new ones are in (4 s when zero): the side that changed its
	// media sends from its old endpoint until the answer reaches it, a
	// retransmitted answer (a lost 200: 0.5 s, then 1 s later) included.
	RetireAfter time.Duration
	OnError     func(error)
}

type pending struct {
	call   string
	halves map[Role]Half
	since  time.Time
}

// Hook pairs the halves and drives the Programmer. Safe for concurrent use:
// mu guards the bookkeeping only; the Programmer runs outside it, one
// operation per Call-ID at a time (busy), so a slow rule install delays
// the posts of its own call only.
type Hook struct {
	cfg     Config
	mu      sync.Mutex
	p       Programmer
	pending map[string]*pending
	// expiry holds the pending halves in arrival order (since is
	// non-decreasing): a post drops the expired ones from its front, so it
	// costs O(1) amortised however many calls are pending. An entry whose
	// call was opened, ended or re-created meanwhile is skipped.
	expiry []*pending
	open   map[string]routing.Call
	// busy marks a call whose OpenCall or CloseCall runs; the channel
	// closes when it returns.
	busy map[string]chan struct{}
	// ops: the rule updates running, installs (OpenCall, its post waits)
	// and removals (CloseCall, in the background); Wait and Drain wait for
	// them. Added under mu while p is set, so none is added after Drain.
	ops sync.WaitGroup
	// installs: how many of ops are installs
	installs int
	// drainWaits, when set (tests), is called when Drain waits for
	// running installs
	drainWaits func(installs int)
	// busyWaits, when set (tests), is called when a post waits for its
	// call's rule update
	busyWaits func(r Request)
	// retiring: the calls an update replaced, whose rules are removed
	// when their timer fires (Drain stops the timers)
	retiring map[*retire]struct{}
}

// retire is a replaced call whose removal is due at its timer.
type retire struct {
	call  string
	c     routing.Call
	timer clock.Timer
}

// New returns a Hook without Programmer (posts are refused with 503 until
// SetProgrammer).
func New(cfg Config) (*Hook, error) {
	if cfg.DCs <= 0 || cfg.EntryIP == nil || cfg.Clock == nil {
		return nil, errors.New("mediahook: DCs, EntryIP and Clock are required")
	}
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = 64 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.RetireAfter <= 0 {
		cfg.RetireAfter = 4 * time.Second
	}
	return &Hook{cfg: cfg, pending: map[string]*pending{}, open: map[string]routing.Call{}, busy: map[string]chan struct{}{},
		retiring: map[*retire]struct{}{}}, nil
}

// SetProgrammer attaches the data plane.
func (h *Hook) SetProgrammer(p Programmer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.p = p
}

// ErrNotReady: no Programmer attached yet.
var ErrNotReady = errors.New("mediahook: the data plane is not attached yet")

// ErrRefused: an update the hook refuses (answered 409): of a call that is
// not open, or from another datacenter than the half it would replace's.
// The error's text names the field.
var ErrRefused = errors.New("mediahook: update refused")

// refusal is an ErrRefused whose text names the field.
type refusal struct{ msg string }

func (r refusal) Error() string        { return r.msg }
func (r refusal) Is(target error) bool { return target == ErrRefused }

// Open returns the calls whose media paths are installed, by Call-ID.
func (h *Hook) Open() map[string]routing.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.open) // never nil: New makes it
}

// Pending returns how many calls have one side reported only.
func (h *Hook) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending)
}

// Handle applies a parsed post. A start completing a call opens it (the
// reply waits for the rules; ctx's cancellation does not stop them, only
// Config.Timeout does); a repeated start (a retransmitted 200) of an open
// call changes nothing, of a call whose opening failed tries again; an end
// closes the call (answered at once: the rules are removed in the
// background, a failure goes to Config.OnError; Wait waits for them) or
// forgets its half. An update of an open call replaces the poster's half
// (updateLocked: new rules first, the old ones retired RetireAfter later);
// one of a call not open, or from another datacenter than the half's, is
// refused (ErrRefused) and changes nothing. A post for a call whose rules are
// being installed or removed waits for that first (up to Config.Timeout);
// posts for other calls do not wait. A request Parse would refuse is an
// error naming the field.
func (h *Hook) Handle(ctx context.Context, r Request) error {
	if err := h.check(r); err != nil {
		return err
	}
	// the rules outlive the request: the P-CSCF's HTTP client gives up
	// after a second (http_client connection_timeout) and the call goes on,
	// so a client that hung up must not cancel an install or a removal
	// half-way (the removal's entry is gone already: its rules would stay)
	base := context.WithoutCancel(ctx)
	// a post of a call whose rule update runs waits for it up to the
	// timeout (wait); its own update then gets the whole timeout (opCtx)
	var wait context.Context
	h.mu.Lock()
	for {
		if h.p == nil {
			h.mu.Unlock()
			return ErrNotReady
		}
		h.expireLocked(h.cfg.Clock.Now())
		done, busy := h.busy[r.Call]
		if !busy {
			break
		}
		busyWaits := h.busyWaits
		h.mu.Unlock()
		if busyWaits != nil {
			busyWaits(r)
		}
		if wait == nil {
			var cancel context.CancelFunc
			wait, cancel = context.WithTimeout(base, h.cfg.Timeout)
			defer cancel()
		}
		select {
		case <-done:
		case <-wait.Done():
			return fmt.Errorf("call %q: its rule update still runs: %w", clip(r.Call), wait.Err())
		}
		h.mu.Lock()
	}
	p := h.p
	if r.Op == "end" {
		delete(h.pending, r.Call)
		c, ok := h.open[r.Call]
		if !ok {
			h.mu.Unlock()
			return nil
		}
		delete(h.open, r.Call)
		finish := h.markBusyLocked(r.Call)
		h.ops.Add(1)
		h.mu.Unlock()
		go func() {
			defer h.ops.Done()
			defer finish()
			ctx, cancel := h.opCtx(base)
			defer cancel()
			if err := p.CloseCall(ctx, c); err != nil && h.cfg.OnError != nil {
				h.cfg.OnError(fmt.Errorf("media hook end of call %q: %w", clip(r.Call), err))
			}
		}()
		return nil
	}
	if c, ok := h.open[r.Call]; ok {
		if r.Op == "update" {
			return h.updateLocked(base, p, r, c) // unlocks
		}
		h.mu.Unlock()
		return nil
	}
	if r.Op == "update" {
		// never a start: a forged in-dialog request must not open a call
		// no end will come for
		h.mu.Unlock()
		return refusal{fmt.Sprintf("call: %q is not open (an update moves a side of an open call)", clip(r.Call))}
	}
	pd := h.pending[r.Call]
	if pd == nil {
		pd = &pending{call: r.Call, halves: map[Role]Half{}, since: h.cfg.Clock.Now()}
		h.pending[r.Call] = pd
		h.expiry = append(h.expiry, pd)
	}
	pd.halves[r.Role] = r.Half
	a, okA := pd.halves[Caller]
	b, okB := pd.halves[Callee]
	if !okA || !okB {
		h.mu.Unlock()
		return nil
	}
	c := h.call(a, b)
	return h.installLocked(base, p, r.Call, c, func(err error) error {
		if err != nil {
			// both halves stay pending: a repeated start tries again (the
			// half is put back if it expired while the install ran, stamped
			// now: the expiry queue stays in arrival order)
			if h.pending[r.Call] == nil {
				pd.since = h.cfg.Clock.Now()
				h.pending[r.Call] = pd
				h.expiry = append(h.expiry, pd)
			}
			return err
		}
		if h.pending[r.Call] == pd {
			delete(h.pending, r.Call)
		}
		h.open[r.Call] = c
		return nil
	})
}

// installLocked runs p.OpenCall(c) for call (called with mu held, returns
// with it released): the call is busy and the install counted in ops and
// installs while it runs outside mu; then done gets its error under mu
// before the install leaves ops (Drain's caller sees its bookkeeping).
func (h *Hook) installLocked(base context.Context, p Programmer, call string, c routing.Call, done func(error) error) error {
	finish := h.markBusyLocked(call)
	h.ops.Add(1)
	h.installs++
	h.mu.Unlock()
	defer finish()
	ctx, cancel := h.opCtx(base)
	defer cancel()
	err := p.OpenCall(ctx, c)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.installs--
	defer h.ops.Done()
	return done(err)
}

// call is the Table 1 call of the two halves.
func (h *Hook) call(a, b Half) routing.Call {
	return routing.Call{
		CallerDC: a.DC, CalleeDC: b.DC, CallerIP: a.IP, CalleeIP: b.IP,
		CallerSendPort: a.Port, CallerRecvPort: a.Port, CalleeSendPort: b.Port, CalleeRecvPort: b.Port,
		CallerEntryIP: h.cfg.EntryIP(a.DC), CalleeEntryIP: h.cfg.EntryIP(b.DC),
	}
}

// halves are the two halves of an open call.
func halves(c routing.Call) (caller, callee Half) {
	return Half{DC: c.CallerDC, IP: c.CallerIP, Port: c.CallerSendPort}, Half{DC: c.CalleeDC, IP: c.CalleeIP, Port: c.CalleeSendPort}
}

// updateLocked replaces r.Role's half of the open call c (called with mu
// held, returns with it released): the new call's rules are installed
// (the post waits), then c's are removed RetireAfter later. Nothing
// changes when the half is c's already or the install fails (c stays open
// with its rules; a repeated update tries again). An update from another
// datacenter than the half's is refused.
func (h *Hook) updateLocked(base context.Context, p Programmer, r Request, c routing.Call) error {
	a, b := halves(c)
	old := &a
	if r.Role == Callee {
		old = &b
	}
	if old.DC != r.DC {
		h.mu.Unlock()
		return refusal{fmt.Sprintf("dc: the %s's half of call %q is in datacenter %d, not %d", r.Role, clip(r.Call), old.DC, r.DC)}
	}
	*old = r.Half
	n := h.call(a, b)
	if n == c {
		h.mu.Unlock()
		return nil
	}
	return h.installLocked(base, p, r.Call, n, func(err error) error {
		if err != nil {
			return err
		}
		// posts of this call wait while it is busy: open[r.Call] is still c
		h.open[r.Call] = n
		if h.p == nil { // Drained meanwhile: the plane goes with the hook
			return nil
		}
		rt := &retire{call: r.Call, c: c}
		h.retiring[rt] = struct{}{}
		rt.timer = h.cfg.Clock.AfterFunc(h.cfg.RetireAfter, func() { h.retire(base, rt) })
		return nil
	})
}

// retire removes a replaced call's rules in the background (Wait waits
// for the removal); a failure goes to Config.OnError. Nothing is done
// after Drain.
func (h *Hook) retire(base context.Context, rt *retire) {
	h.mu.Lock()
	_, due := h.retiring[rt]
	delete(h.retiring, rt)
	p := h.p
	if !due || p == nil {
		h.mu.Unlock()
		return
	}
	h.ops.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.ops.Done()
		ctx, cancel := h.opCtx(base)
		defer cancel()
		if err := p.CloseCall(ctx, rt.c); err != nil && h.cfg.OnError != nil {
			h.cfg.OnError(fmt.Errorf("media hook: removing the replaced rules of call %q: %w", clip(rt.call), err))
		}
	}()
}

// Retiring returns how many replaced calls' rules are waiting for their
// removal (RetireAfter).
func (h *Hook) Retiring() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.retiring)
}

// Wait returns when the rule updates running now are done: the removals
// of the ends answered so far and the running installs (each bounded by
// Config.Timeout).
func (h *Hook) Wait() { h.ops.Wait() }

// Drain detaches the Programmer (later posts get ErrNotReady, a post
// waiting for its call's update gets it once that update is done) and
// waits for the rule updates still running, installs and removals, each
// bounded by Config.Timeout: after Drain nothing uses the Programmer, so
// the caller may close the data plane. A post whose HTTP connection was
// cut (Server.Stop's bound expired) still has its install running; Drain
// waits for it too.
func (h *Hook) Drain() {
	h.mu.Lock()
	h.p = nil
	for rt := range h.retiring { // the plane goes with the hook: nothing left to remove
		rt.timer.Stop()
	}
	clear(h.retiring)
	n, hook := h.installs, h.drainWaits
	h.mu.Unlock()
	if n > 0 && hook != nil {
		hook(n)
	}
	h.ops.Wait()
}

// check refuses a request Parse would not have produced (Handle is
// exported: the daemon's tests and other callers need not come through
// HTTP); errors name the field.
func (h *Hook) check(r Request) error {
	n := h.cfg.DCs
	switch {
	case !validOp(r.Op):
		return fmt.Errorf("op: %q is not start, update or end", r.Op)
	case r.Role != Caller && r.Role != Callee:
		return fmt.Errorf("role: %q is not caller or callee", r.Role)
	case r.Call == "":
		return errors.New("call: the Call-ID is empty")
	case r.DC < 0 || r.DC >= n:
		return fmt.Errorf("dc: %d is not one of 0..%d", r.DC, n-1)
	case r.Op != "end" && r.Half.DC != r.DC:
		return fmt.Errorf("half.dc: %d is not the posting datacenter %d", r.Half.DC, r.DC)
	case r.Op != "end" && r.Half.Port == 0:
		return errors.New("half.port: 0 is not a media port")
	case r.Op != "end" && r.Half.IP == 0:
		return errors.New("half.ip: 0.0.0.0 is no media endpoint")
	}
	return nil
}

// expireLocked drops the halves older than PendingTTL; a call whose
// install runs keeps its halves (they are put back if the install fails).
func (h *Hook) expireLocked(now time.Time) {
	n := 0
	for _, pd := range h.expiry {
		if now.Sub(pd.since) <= h.cfg.PendingTTL {
			break
		}
		n++
		if h.pending[pd.call] == pd {
			delete(h.pending, pd.call)
		}
	}
	if n == 0 {
		return
	}
	clear(h.expiry[:n]) // let the dropped halves be collected
	h.expiry = h.expiry[n:]
}

// opCtx bounds one Programmer call by Config.Timeout.
func (h *Hook) opCtx(base context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(base, h.cfg.Timeout)
}

// markBusyLocked marks call's rule update running; the returned func ends
// it (taking mu).
func (h *Hook) markBusyLocked(call string) (finish func()) {
	done := make(chan struct{})
	h.busy[call] = done
	return func() {
		h.mu.Lock()
		delete(h.busy, call)
		h.mu.Unlock()
		close(done)
	}
}

// Handler serves the hook below prefix (e.g. "/media/v1").
func (h *Hook) Handler(prefix string) http.Handler {
	return http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "method: POST only", http.StatusMethodNotAllowed)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, 8<<10)
		if err := req.ParseForm(); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r, err := Parse(req.URL.Path, req.PostForm, h.cfg.DCs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch err := h.Handle(req.Context(), r); {
		case errors.Is(err, ErrNotReady):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.Is(err, ErrRefused):
			if h.cfg.OnError != nil {
				h.cfg.OnError(fmt.Errorf("media hook %s %s refused: %w", r.Op, r.Role, err))
			}
			http.Error(w, err.Error(), http.StatusConflict)
		case err != nil:
			if h.cfg.OnError != nil {
				h.cfg.OnError(fmt.Errorf("media hook %s %s: %w", r.Op, r.Role, err))
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
}
