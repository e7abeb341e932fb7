package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ScalePath is the URL path, under a local controller's base URL, of the
// manual-scale endpoint: an operator's ScaleVnf taken by the API of another
// node reaches the node that runs the DC's local controller here.
const ScalePath = "/v1/scale"

// maxScaleDelta bounds one manual operation's step count.
const maxScaleDelta = 1000

// ScaleCommand asks a local controller to change a VNF's working count by
// Delta (negative: scale in) on an operator's behalf.
type ScaleCommand struct {
	VNF    string `json:"vnf"`
	Delta  int    `json:"delta"`
	Detail string `json:"detail,omitempty"`
	// HoldFor is how long the new count holds as a floor (scale-out) or
	// ceiling (scale-in) against later rounds; 0 = until released
	// (local.Controller.ScaleFor).
	HoldFor time.Duration `json:"holdFor,omitempty"`
	// Release ends the VNF's manual hold instead of scaling (Delta 0).
	Release bool `json:"release,omitempty"`
}

// MaxHold bounds a manual hold's duration.
const MaxHold = 30 * 24 * time.Hour

// ScaleResult answers a ScaleCommand: the new target, or why it failed.
type ScaleResult struct {
	Target int    `json:"target"`
	Error  string `json:"error,omitempty"`
}

// Scaler is the local controller as the manual-scale endpoint sees it.
type Scaler interface {
	ScaleFor(vnf string, delta int, detail string, holdFor time.Duration) (int, error)
	// Release ends the VNF's manual hold (false: there was none).
	Release(vnf, detail string) (bool, error)
}

// ParseScale decodes and checks a ScaleCommand body; the error names the
// field.
func ParseScale(r io.Reader) (ScaleCommand, error) {
	var c ScaleCommand
	if err := DecodeStrict(r, &c, "request body"); err != nil {
		return ScaleCommand{}, err
	}
	switch {
	case c.VNF == "":
		return ScaleCommand{}, errors.New("vnf: empty")
	case c.Release && (c.Delta != 0 || c.HoldFor != 0):
		return ScaleCommand{}, errors.New("release: no delta or holdFor with a release")
	case !c.Release && (c.Delta == 0 || c.Delta > maxScaleDelta || c.Delta < -maxScaleDelta):
		return ScaleCommand{}, fmt.Errorf("delta: %d must be non-zero and within ±%d", c.Delta, maxScaleDelta)
	case c.HoldFor < 0 || c.HoldFor > MaxHold:
		return ScaleCommand{}, fmt.Errorf("holdFor: %v must be in [0, %v]", c.HoldFor, MaxHold)
	case len(c.Detail) > 1024 || !utf8.ValidString(c.Detail):
		return ScaleCommand{}, errors.New("detail: at most 1024 bytes of UTF-8")
	}
	return c, nil
}

// ScaleHandler serves ScalePath for one local controller (bearer token as
// for the protocol endpoint).
type ScaleHandler struct {
	s     Scaler
	token []byte
}

// NewScaleHandler wraps a local controller. token must not be empty.
func NewScaleHandler(s Scaler, token string) (*ScaleHandler, error) {
	if token == "" {
		return nil, errors.New("transport scale handler: token is empty")
	}
	return &ScaleHandler{s: s, token: []byte(token)}, nil
}

// ServeHTTP implements http.Handler. A refused scale (unknown VNF, sanity
// limit, draining DC) is a 200 whose result carries the error: the request
// itself was fine.
func (h *ScaleHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ScalePath {
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if !AcceptPost(w, r, h.token) {
		return
	}
	c, err := ParseScale(http.MaxBytesReader(w, r.Body, 8<<10))
	if err != nil {
		BodyError(w, err)
		return
	}
	var res ScaleResult
	if c.Release {
		if _, err = h.s.Release(c.VNF, c.Detail); err != nil {
			res = ScaleResult{Error: err.Error()}
		}
	} else if res.Target, err = h.s.ScaleFor(c.VNF, c.Delta, c.Detail, c.HoldFor); err != nil {
		res = ScaleResult{Error: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// Scale sends a manual-scale command to dc's local controller and waits for
// the answer (bounded by ctx and the transport's timeout).
func (t *HTTP) Scale(ctx context.Context, dc string, c ScaleCommand) (int, error) {
	base, ok := t.cfg.Endpoints[dc]
	if !ok {
		return 0, fmt.Errorf("transport: no endpoint for datacenter %q", dc)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	var out ScaleResult
	err = t.postJSON(ctx, strings.TrimSuffix(base, "/")+ScalePath, body, dc, func(r io.Reader) error {
		if err := json.NewDecoder(r).Decode(&out); err != nil {
			return fmt.Errorf("transport: scale in %s: response body: %w", dc, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if out.Error != "" {
		return 0, errors.New(out.Error)
	}
	return out.Target, nil
}
