package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

var fuzzMethods = []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// FuzzHandler throws arbitrary methods, paths, content types, tokens and
// bodies at the handler: it must never panic nor answer 5xx, and every
// error must be a problem+json document whose status matches the answer.
func FuzzHandler(f *testing.F) {
	seed := func(m byte, path, ct string, tok byte, body string) { f.Add(m, path, ct, tok, []byte(body)) }
	seed(1, "/api/v1/datacenters", "application/json", 2, `{"datacenters":[{"name":"dc0","group":"g0"}]}`)
	seed(1, "/api/v1/delays", "application/json", 2, `{"datacenters":["dc0","dc1"],"delaysMs":[[0,1],[1,0]]}`)
	seed(1, "/api/v1/vnf-types", "application/json", 2, `{"vnfTypes":[{"name":"x","plane":"dp","image":"i","flavor":"f","capacity":1,"thresholds":{"cpu":1,"mem":1,"pktRate":1}}]}`)
	seed(1, "/api/v1/chains", "application/json", 2, `{"chains":[{"name":"dp","stages":["firewall"]}]}`)
	seed(1, "/api/v1/policies/x?dryRun=true", "application/json", 2, `{"intervalSeconds":50,"tau":10,"delayBoundMs":250,"predictor":"ar1","strategy":"hybrid","limits":[{"vnf":"ids","min":1,"max":2}]}`)
	seed(1, "/api/v1/policies/default", "application/json; charset=utf-8", 2, `{"intervalSeconds":1e3,"tau":10,"delayBoundMs":-0,"predictor":"holt+q90","strategy":"reactive"}`)
	seed(2, "/api/v1/vnfs/ids/scale", "application/json", 2, `{"dc":"dc0","type":"SCALE_IN","numberOfSteps":1}`)
	seed(2, "/api/v1/datacenters/dc0/drain", "", 2, ``)
	seed(3, "/api/v1/policies/default", "", 2, ``)
	seed(0, "/api/v1/decisions?since=3&limit=2", "", 1, ``)
	seed(0, "/api/v1/decisions?after=1&limit=1", "", 1, ``)
	seed(0, "/api/v1/decisions?after=99&since=x", "", 1, ``)
	seed(3, "/api/v1/datacenters/dc0/drain", "", 2, ``)
	seed(0, "/api/v1/operations/op-1", "", 1, ``)
	seed(0, "/api/v1/state", "", 0, ``)
	seed(1, "/api/v1/datacenters", "application/json", 1, `{"datacenters":null}`)
	seed(1, "/api/v1/delays", "application/json", 2, `{"datacenters":["dc0"],"delaysMs":[[0],[1]]}`)
	seed(1, "/api/v1/policies/%00", "text/plain", 2, "\x00\xff")
	f.Fuzz(func(t *testing.T, m byte, path, ct string, tok byte, body []byte) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") {
			return // never reaches a server
		}
		b := apitest.Paper(now)
		s := newServer(t, b, nil)
		req := &http.Request{
			Method: fuzzMethods[int(m)%len(fuzzMethods)], URL: u, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "api.test", RemoteAddr: "127.0.0.1:1",
			Body: http.NoBody, ContentLength: int64(len(body)),
		}
		req = req.WithContext(t.Context())
		if len(body) > 0 {
			req.Body = httpBody(body)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		switch tok % 3 {
		case 1:
			req.Header.Set("Authorization", "Bearer "+readToken)
		case 2:
			req.Header.Set("Authorization", "Bearer "+adminToken)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("%s %q (%q, %q): status %d: %s", req.Method, path, ct, body, w.Code, w.Body.Bytes())
		}
		if w.Code < 300 || w.Code == http.StatusNoContent || req.Method == http.MethodHead {
			if w.Code != http.StatusNoContent && w.Header().Get("Content-Type") == "application/json" && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("invalid JSON answer: %s", w.Body.Bytes())
			}
			return
		}
		if got := w.Header().Get("Content-Type"); got != api.ProblemContentType {
			t.Fatalf("%s %q: status %d with Content-Type %q", req.Method, path, w.Code, got)
		}
		var p api.Problem
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("problem body %s: %v", w.Body.Bytes(), err)
		}
		if p.Status != w.Code || p.Type == "" || p.Title == "" || p.Detail == "" {
			t.Fatalf("problem %+v for status %d", p, w.Code)
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func httpBody(b []byte) readCloser { return readCloser{bytes.NewReader(b)} }
