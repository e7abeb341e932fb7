package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

// remoteGet serves one GET in process from a remote address
// (httptest.NewRequest's 192.0.2.1), with the given headers.
func remoteGet(t *testing.T, h http.Handler, path string, hdr map[string]string) reply {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return reply{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// The cached state goes out gzip-encoded to remote clients that accept it
// (one compression per state version), identical once decoded, with its
// own ETag; either ETag of the version answers 304. Loopback clients get
// the identity body.
func TestStateGzip(t *testing.T) {
	b := apitest.Paper(now)
	h := newServer(t, b, nil)
	url := "/api/v1/state"
	rawGet := func(t *testing.T, url string, hdr map[string]string) reply { return remoteGet(t, h, url, hdr) }
	plain := rawGet(t, url, map[string]string{"Accept-Encoding": "identity"})
	zipped := rawGet(t, url, map[string]string{"Accept-Encoding": "br, gzip"})
	if plain.status != 200 || plain.header.Get("Content-Encoding") != "" || plain.header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("identity: %d, Content-Encoding %q, Vary %q", plain.status, plain.header.Get("Content-Encoding"), plain.header.Get("Vary"))
	}
	if zipped.status != 200 || zipped.header.Get("Content-Encoding") != "gzip" || zipped.header.Get("Vary") != "Accept-Encoding" ||
		zipped.header.Get("Content-Length") != strconv.Itoa(len(zipped.body)) || len(zipped.body) >= len(plain.body) {
		t.Fatalf("gzip: %d, headers %v, %d bytes against %d", zipped.status, zipped.header, len(zipped.body), len(plain.body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain.body) {
		t.Fatalf("gunzipped body differs from the identity body (%v)", err)
	}
	et, gzEt := plain.header.Get("ETag"), zipped.header.Get("ETag")
	if et == "" || gzEt == "" || et == gzEt {
		t.Fatalf("ETags %q and %q must be present and differ", et, gzEt)
	}
	cases := []struct {
		name string
		hdr  map[string]string
		want int
		enc  string
	}{
		{name: "gzip refused with q=0", hdr: map[string]string{"Accept-Encoding": "gzip;q=0"}, want: 200},
		{name: "identity ETag, gzip accepted", hdr: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": et}, want: 304},
		{name: "gzip ETag, identity", hdr: map[string]string{"Accept-Encoding": "identity", "If-None-Match": gzEt}, want: 304},
		{name: "weak gzip ETag in a list", hdr: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": `"x", W/` + gzEt}, want: 304},
		{name: "another version's ETag", hdr: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": `"s999-gz"`}, want: 200, enc: "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawGet(t, url, tc.hdr)
			if r.status != tc.want || r.header.Get("Content-Encoding") != tc.enc {
				t.Fatalf("status %d, Content-Encoding %q; want %d, %q", r.status, r.header.Get("Content-Encoding"), tc.want, tc.enc)
			}
		})
	}
	// A loopback client accepting gzip gets the identity body.
	ts := startHandler(t, h)
	req, _ := http.NewRequest("GET", ts+url, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(lb, plain.body) ||
		resp.Header.Get("ETag") != et || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("loopback: %d, headers %v", resp.StatusCode, resp.Header)
	}
	// A small state is not worth compressing.
	b.SetState(api.State{Interval: 9})
	r := rawGet(t, url, map[string]string{"Accept-Encoding": "gzip"})
	if r.status != 200 || r.header.Get("Content-Encoding") != "" || r.header.Get("Vary") != "" {
		t.Fatalf("small state: %d, Content-Encoding %q, Vary %q", r.status, r.header.Get("Content-Encoding"), r.header.Get("Vary"))
	}
}
