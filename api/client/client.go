// Package client owns the typed Go client of the ims-orch REST API, used by
// the CLI and by MANO integrators: one method per endpoint, typed results
// (the api package's resource types), errors as *ProblemError carrying the
// server's problem+json document. A write sent to a follower that answers
// 307 or 421 is repeated once at the leader the follower names, with the
// same token.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/api"
)

// Client calls one ims-orch API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token   string
	tls     *tls.Config
	hc      *http.Client
	timeout time.Duration
}

// WithToken sets the bearer token.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLSConfig sets the TLS configuration (CA pool, client certificate for
// mTLS). Ignored when WithHTTPClient is given.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithHTTPClient uses hc (its redirect policy is replaced: the client
// follows the leader itself).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithTimeout bounds each call (30 s by default; 0 keeps the default).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// New returns a client of the API at baseURL (e.g. "https://10.0.0.1:8443").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[:port]", baseURL)
	}
	o := options{timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	hc := o.hc
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.tls
		tr.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: tr, Timeout: o.timeout}
	} else {
		c := *hc
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u, token: o.token, hc: hc}, nil
}

// ProblemError is an error answer of the API.
type ProblemError struct {
	Status  int
	Problem api.Problem
}

func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	if e.Problem.Detail != "" {
		b.WriteString(": " + e.Problem.Detail)
	}
	if len(e.Problem.Errors) > 1 {
		for _, f := range e.Problem.Errors {
			fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Reason)
		}
	}
	return b.String()
}

// IsStatus reports whether err is a *ProblemError with that status.
func IsStatus(err error, status int) bool {
	var pe *ProblemError
	return errors.As(err, &pe) && pe.Status == status
}

// do sends one request and decodes a 2xx JSON answer into out (nil: ignore
// the body). A 307 or 421 naming a leader is retried once there.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (http.Header, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
	}
	base := c.base
	for attempt := 0; ; attempt++ {
		u := *base
		u.Path = strings.TrimSuffix(base.Path, "/") + path
		u.RawQuery = query.Encode()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json, application/problem+json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: reading the answer: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusMisdirectedRequest {
			if leader := resp.Header.Get(api.LeaderHeader); leader != "" && attempt == 0 {
				lu, err := url.Parse(leader)
				if err == nil && (lu.Scheme == "http" || lu.Scheme == "https") && lu.Host != "" {
					base = lu
					continue
				}
			}
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return resp.Header, problemOf(resp, data)
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.Header, fmt.Errorf("client: %s %s: decoding the answer: %w", method, path, err)
			}
		}
		return resp.Header, nil
	}
}

func problemOf(resp *http.Response, data []byte) error {
	pe := &ProblemError{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == api.ProblemContentType || mt == "application/json" {
		if err := json.Unmarshal(data, &pe.Problem); err == nil && pe.Problem.Status != 0 {
			return pe
		}
	}
	pe.Problem = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
		Detail: strings.TrimSpace(string(bytes.ToValidUTF8(data[:min(len(data), 512)], nil)))}
	return pe
}

// Datacenters lists the datacenters.
func (c *Client) Datacenters(ctx context.Context) ([]api.Datacenter, error) {
	var out api.DatacenterList
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/datacenters", nil, nil, &out)
	return out.Datacenters, err
}

// PutDatacenters replaces the datacenters.
func (c *Client) PutDatacenters(ctx context.Context, dcs []api.Datacenter) (api.PutResult, error) {
	var out api.PutResult
	_, err := c.do(ctx, http.MethodPut, api.Prefix+"/datacenters", nil, api.DatacenterList{Datacenters: dcs}, &out)
	return out, err
}

// Delays returns the delay matrix.
func (c *Client) Delays(ctx context.Context) (api.DelayMatrix, error) {
	var out api.DelayMatrix
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/delays", nil, nil, &out)
	return out, err
}

// PutDelays replaces the delay matrix.
func (c *Client) PutDelays(ctx context.Context, m api.DelayMatrix) (api.PutResult, error) {
	var out api.PutResult
	_, err := c.do(ctx, http.MethodPut, api.Prefix+"/delays", nil, m, &out)
	return out, err
}

// VNFTypes lists the VNF types.
func (c *Client) VNFTypes(ctx context.Context) ([]api.VNFType, error) {
	var out api.VNFTypeList
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/vnf-types", nil, nil, &out)
	return out.VNFTypes, err
}

// PutVNFTypes replaces the VNF types.
func (c *Client) PutVNFTypes(ctx context.Context, ts []api.VNFType) (api.PutResult, error) {
	var out api.PutResult
	_, err := c.do(ctx, http.MethodPut, api.Prefix+"/vnf-types", nil, api.VNFTypeList{VNFTypes: ts}, &out)
	return out, err
}

// Chains lists the service chains.
func (c *Client) Chains(ctx context.Context) ([]api.Chain, error) {
	var out api.ChainList
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/chains", nil, nil, &out)
	return out.Chains, err
}

// PutChains replaces the service chains.
func (c *Client) PutChains(ctx context.Context, cs []api.Chain) (api.PutResult, error) {
	var out api.PutResult
	_, err := c.do(ctx, http.MethodPut, api.Prefix+"/chains", nil, api.ChainList{Chains: cs}, &out)
	return out, err
}

// Policies lists the scaling policies.
func (c *Client) Policies(ctx context.Context) ([]api.Policy, error) {
	var out api.PolicyList
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/policies", nil, nil, &out)
	return out.Policies, err
}

func policyPath(name string) string { return api.Prefix + "/policies/" + url.PathEscape(name) }

// Policy returns one scaling policy.
func (c *Client) Policy(ctx context.Context, name string) (api.Policy, error) {
	var out api.Policy
	_, err := c.do(ctx, http.MethodGet, policyPath(name), nil, nil, &out)
	return out, err
}

// PutPolicy creates or replaces a policy; the result says whether it was
// created, updated or unchanged, and what changed.
func (c *Client) PutPolicy(ctx context.Context, p api.Policy) (api.PutResult, error) {
	var out api.PutResult
	_, err := c.do(ctx, http.MethodPut, policyPath(p.Name), nil, p, &out)
	return out, err
}

// DryRunPolicy asks what would change and what the next round would decide
// under p, committing nothing.
func (c *Client) DryRunPolicy(ctx context.Context, p api.Policy) (api.DryRunResult, error) {
	var out api.DryRunResult
	_, err := c.do(ctx, http.MethodPut, policyPath(p.Name), url.Values{"dryRun": {"true"}}, p, &out)
	return out, err
}

// DeletePolicy deletes a policy.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, policyPath(name), nil, nil, nil)
	return err
}

// State returns the live state.
func (c *Client) State(ctx context.Context) (api.State, error) {
	var out api.State
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/state", nil, nil, &out)
	return out, err
}

// Decisions returns the first page of up to limit decisions of rounds ≥
// since (limit 0: the server's default). DecisionsPage and AllDecisions
// page further.
func (c *Client) Decisions(ctx context.Context, since int64, limit int) ([]api.Decision, error) {
	l, err := c.DecisionsPage(ctx, api.DecisionQuery{Since: since, Limit: limit})
	return l.Decisions, err
}

// DecisionsPage returns one page of the decision history: decisions of
// rounds ≥ q.Since after the cursor q.After (0: from the oldest), at most
// q.Limit (0: the server's default). Pass the answer's Next as the next
// q.After; More says whether more decisions followed.
func (c *Client) DecisionsPage(ctx context.Context, q api.DecisionQuery) (api.DecisionList, error) {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out api.DecisionList
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/decisions", v, nil, &out)
	return out, err
}

// AllDecisions follows the cursor from q.After until the history is
// exhausted or q.Limit decisions are collected (q.Limit 0: no bound),
// fetching pages of up to api.MaxDecisionsLimit. The answer's Next is the
// cursor after the last decision returned, More whether decisions were left
// out because of q.Limit.
func (c *Client) AllDecisions(ctx context.Context, q api.DecisionQuery) (api.DecisionList, error) {
	all := api.DecisionList{Decisions: []api.Decision{}, Next: q.After}
	for {
		page := api.MaxDecisionsLimit
		if q.Limit > 0 {
			page = min(page, q.Limit-len(all.Decisions))
		}
		l, err := c.DecisionsPage(ctx, api.DecisionQuery{Since: q.Since, After: all.Next, Limit: page})
		if err != nil {
			return all, err
		}
		if l.More && l.Next <= all.Next {
			return all, fmt.Errorf("client: GET %s/decisions: the cursor did not advance past %d", api.Prefix, all.Next)
		}
		all.Decisions = append(all.Decisions, l.Decisions...)
		all.Next, all.More = l.Next, l.More
		if !l.More || (q.Limit > 0 && len(all.Decisions) >= q.Limit) {
			return all, nil
		}
	}
}

// Scale scales req.VNF in req.DC out or in by req.NumberOfSteps and returns
// the started operation.
func (c *Client) Scale(ctx context.Context, req api.ScaleRequest) (api.Operation, error) {
	var out api.Operation
	_, err := c.do(ctx, http.MethodPost, api.Prefix+"/vnfs/"+url.PathEscape(req.VNF)+"/scale", nil, req, &out)
	return out, err
}

// Drain drains a datacenter and returns the started operation.
func (c *Client) Drain(ctx context.Context, dc string) (api.Operation, error) {
	var out api.Operation
	_, err := c.do(ctx, http.MethodPost, api.Prefix+"/datacenters/"+url.PathEscape(dc)+"/drain", nil, api.DrainRequest{DC: dc}, &out)
	return out, err
}

// Undrain ends the drain of a datacenter and returns the operation.
func (c *Client) Undrain(ctx context.Context, dc string) (api.Operation, error) {
	var out api.Operation
	_, err := c.do(ctx, http.MethodDelete, api.Prefix+"/datacenters/"+url.PathEscape(dc)+"/drain", nil, nil, &out)
	return out, err
}

// Operation returns a manual operation.
func (c *Client) Operation(ctx context.Context, id string) (api.Operation, error) {
	var out api.Operation
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/operations/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Ready returns nil when the node is ready (/readyz answers 200).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// OpenAPI returns the server's OpenAPI document (JSON).
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/openapi.json", nil, nil, &out)
	return out, err
}
