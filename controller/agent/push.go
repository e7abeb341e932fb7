package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// StatsPath returns the URL path where a DC's local controller takes its
// instances' statistics: POST /dc/<dc>/stats.
func StatsPath(dc string) string { return "/dc/" + dc + "/stats" }

// MaxStatsBytes bounds a statistics report body (an S-CSCF's CP counters
// of 50 DCs take about 60 KiB).
const MaxStatsBytes = 128 << 10

// StatsReport is one statistics sample on the wire (agent → local
// controller), JSON.
type StatsReport struct {
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
	CPU      float64   `json:"cpu"`     // percent of the machine
	Mem      float64   `json:"mem"`     // percent in use
	PktRate  float64   `json:"pktRate"` // received packets/s
	Flows    int       `json:"flows"`   // what the instance still carries
	// FlowsUnknown: the agent cannot count what the instance carries
	// (Sample.FlowsUnknown); Flows is then 0 and means nothing.
	FlowsUnknown bool `json:"flowsUnknown,omitempty"`
	// CP is an S-CSCF's cumulative CP transactions per "entry DC>exit
	// DC" (Sample.CP); absent elsewhere.
	CP map[string]int64 `json:"cp,omitempty"`
}

// MaxCPKeys bounds StatsReport.CP: the S-CSCF counts per DC pair, so the
// keys are at most DCs² (plus the unmapped ones).
const MaxCPKeys = 4096

// ParseStatsReport decodes and checks a statistics report strictly
// (unknown fields and trailing data refused); errors name the field.
func ParseStatsReport(r io.Reader) (StatsReport, error) {
	var s StatsReport
	if err := transport.DecodeStrict(r, &s, "stats report body"); err != nil {
		return StatsReport{}, err
	}
	switch {
	case s.Instance == "" || len(s.Instance) > 256:
		return StatsReport{}, errors.New("instance: empty or longer than 256 bytes")
	case s.At.IsZero():
		return StatsReport{}, errors.New("at: missing measurement time")
	case s.Flows < 0:
		return StatsReport{}, fmt.Errorf("flows: %d: must not be negative", s.Flows)
	case s.FlowsUnknown && s.Flows != 0:
		return StatsReport{}, fmt.Errorf("flows: %d with flowsUnknown: an unknown count must be 0", s.Flows)
	}
	if len(s.CP) > MaxCPKeys {
		return StatsReport{}, fmt.Errorf("cp: %d counters: at most %d", len(s.CP), MaxCPKeys)
	}
	for k, v := range s.CP {
		switch {
		case len(k) > 256 || !strings.Contains(k, ">"):
			return StatsReport{}, fmt.Errorf("cp[%q]: not an \"entry>exit\" key of at most 256 bytes", k)
		case v < 0:
			return StatsReport{}, fmt.Errorf("cp[%q]: %d: must not be negative", k, v)
		}
	}
	for _, m := range []struct {
		name string
		v    float64
		max  float64
	}{{"cpu", s.CPU, 100}, {"mem", s.Mem, 100}, {"pktRate", s.PktRate, math.MaxFloat64}} {
		if math.IsNaN(m.v) || m.v < 0 || m.v > m.max {
			return StatsReport{}, fmt.Errorf("%s: %g: must be in [0, %g]", m.name, m.v, m.max)
		}
	}
	return s, nil
}

// Intake is a local controller's statistics intake (local.Controller).
type Intake interface {
	ReportStats(id string, s local.Stats) error
}

// StatsHandler serves POST /dc/<dc>/stats for the local controllers of
// this node: bearer token (the agents' token), strict parsing, and the
// instance must be in the DC's registry. Answers: 204 taken, 400 naming the
// field, 401, 404 for an unknown DC or instance, 405, 409 for an instance
// the controller failed, 413.
type StatsHandler struct {
	dcs   map[string]Intake
	token []byte
	// OnReport, if set, hears every outcome ("accepted", "refused").
	OnReport func(dc, outcome string)
	// OnCP, if set, takes the CP counters of an accepted report that has
	// them (an S-CSCF's agent): the DC's CP workload meter reads them.
	OnCP func(dc, instance string, at time.Time, cp map[string]int64)
}

// NewStatsHandler serves the given controllers, by DC name.
func NewStatsHandler(dcs map[string]Intake, token string) (*StatsHandler, error) {
	if token == "" {
		return nil, errors.New("stats handler: token is empty")
	}
	if len(dcs) == 0 {
		return nil, errors.New("stats handler: no local controller")
	}
	m := make(map[string]Intake, len(dcs))
	for dc, in := range dcs {
		if in == nil {
			return nil, fmt.Errorf("stats handler: controller of %q is nil", dc)
		}
		m[dc] = in
	}
	return &StatsHandler{dcs: m, token: []byte(token)}, nil
}

// ServeHTTP implements http.Handler.
func (h *StatsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/dc/")
	dc, ok2 := strings.CutSuffix(rest, "/stats")
	in := h.dcs[dc]
	if !ok || !ok2 || in == nil {
		transport.WriteError(w, http.StatusNotFound, "no local controller for this datacenter on this node")
		return
	}
	outcome := "refused"
	defer func() {
		if h.OnReport != nil {
			h.OnReport(dc, outcome)
		}
	}()
	if !transport.AcceptPost(w, r, h.token) {
		return
	}
	s, err := ParseStatsReport(http.MaxBytesReader(w, r.Body, MaxStatsBytes))
	if err != nil {
		transport.BodyError(w, err)
		return
	}
	err = in.ReportStats(s.Instance, local.Stats{At: s.At, CPU: s.CPU, Mem: s.Mem, PktRate: s.PktRate, Flows: s.Flows,
		FlowsUnknown: s.FlowsUnknown})
	switch {
	case err == nil:
		outcome = "accepted"
		if h.OnCP != nil && s.CP != nil {
			h.OnCP(dc, s.Instance, s.At, s.CP)
		}
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, local.ErrUnknownInstance):
		transport.WriteError(w, http.StatusNotFound, fmt.Sprintf("instance: %q is not an instance of %s", s.Instance, dc))
	default:
		transport.WriteError(w, http.StatusConflict, err.Error())
	}
}

// Pusher is a Sink that posts each sample to the local controller's stats
// endpoint. A sample that cannot be delivered is lost (the next one follows
// a second later); the controller's statistics timeout notices a silent
// instance.
type Pusher struct {
	url    string
	token  string
	client *http.Client
	// Timeout bounds one post (default 1 s).
	Timeout time.Duration
}

// NewPusher posts to base (the node that runs the DC's local controller:
// "https://node2:8443"; "host:port" means http://) + StatsPath(dc).
func NewPusher(base, dc, token string, client *http.Client) (*Pusher, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("controller: %q is not an http(s) URL or host:port", base)
	}
	if dc == "" || strings.ContainsAny(dc, "/ ") {
		return nil, fmt.Errorf("dc: %q is empty or holds '/' or a space", dc)
	}
	if token == "" {
		return nil, errors.New("token: empty")
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Pusher{url: strings.TrimSuffix(base, "/") + StatsPath(dc), token: token, client: client, Timeout: time.Second}, nil
}

// URL is where the samples go.
func (p *Pusher) URL() string { return p.url }

// ReportStats implements Sink.
func (p *Pusher) ReportStats(id string, s Sample) error {
	body, err := json.Marshal(StatsReport{Instance: id, At: s.At, CPU: min(s.CPU, 100), Mem: min(s.Mem, 100),
		PktRate: s.PktRate, Flows: int(s.InFlight()), FlowsUnknown: s.FlowsUnknown, CP: s.CP})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("agent: stats to %s: %w", p.url, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
		return fmt.Errorf("agent: stats to %s: %s: %s", p.url, res.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
