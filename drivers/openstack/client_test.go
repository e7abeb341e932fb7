package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keystoneFake answers Keystone's version discovery (GET /) and password
// authentication (POST /v3/auth/tokens) with a catalog holding compute and
// image endpoints in two regions. faults[n], when set, answers its n-th
// request (of either kind) instead.
type keystoneFake struct {
	t      *testing.T
	url    string // where it serves (set before it serves)
	faults []keystoneFault

	mu               sync.Mutex
	requests, tokens int           // requests seen, tokens issued
	open             int           // client connections open (startKeystone's server)
	connChanged      chan struct{} // a send (dropped when full) as one opens or closes
}

// keystoneFault answers one request in Keystone's place.
type keystoneFault func(w http.ResponseWriter, r *http.Request)

// startKeystone serves a keystoneFake on loopback for the rest of t.
func startKeystone(t *testing.T, faults ...keystoneFault) *keystoneFake {
	k := &keystoneFake{t: t, faults: faults, connChanged: make(chan struct{}, 1)}
	srv := httptest.NewUnstartedServer(k)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		k.mu.Lock()
		switch st {
		case http.StateNew:
			k.open++
		case http.StateClosed, http.StateHijacked:
			k.open--
		}
		k.mu.Unlock()
		select {
		case k.connChanged <- struct{}{}:
		default:
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	k.url = srv.URL
	return k
}

// counts returns the requests seen and the tokens issued so far.
func (k *keystoneFake) counts() (requests, tokens int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests, k.tokens
}

// waitOpen waits until want client connections are open at the fake, as
// the client's closes reach it; it fails t if that does not happen within
// a bound (a failure bound, not a timing: closes arrive in microseconds).
func (k *keystoneFake) waitOpen(want int) {
	k.t.Helper()
	bound := time.After(10 * time.Second)
	for {
		k.mu.Lock()
		open := k.open
		k.mu.Unlock()
		if open == want {
			return
		}
		select {
		case <-k.connChanged:
		case <-bound:
			k.t.Fatalf("%d client connections open at Keystone, want %d", open, want)
		}
	}
}

func (k *keystoneFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	n := k.requests
	k.requests++
	k.mu.Unlock()
	if n < len(k.faults) && k.faults[n] != nil {
		k.faults[n](w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		w.WriteHeader(300)
		fmt.Fprintf(w, `{"versions": {"values": [{"id": "v3.14", "status": "stable", "links": [{"rel": "self", "href": "%s/v3/"}]}]}}`, k.url)
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
		k.mu.Lock()
		k.tokens++
		k.mu.Unlock()
		ep := func(region, path string) string {
			return fmt.Sprintf(`{"id": "%s%s", "interface": "public", "region": "%s", "region_id": "%s", "url": "%s/%s/%s"}`,
				region, path, region, region, k.url, region, path)
		}
		w.Header().Set("X-Subject-Token", "tok")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00Z",
			"project": {"id": "p1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
			"user": {"id": "u1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
			"catalog": [
			  {"type": "compute", "name": "nova", "id": "c", "endpoints": [%s, %s]},
			  {"type": "image", "name": "glance", "id": "i", "endpoints": [%s, %s]}]}}`,
			ep("RegionOne", "compute/v2.1"), ep("RegionTwo", "compute/v2.1"), ep("RegionOne", "image/v2"), ep("RegionTwo", "image/v2"))
	default:
		k.t.Errorf("keystone fake: unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

// writeClouds points OS_CLIENT_CONFIG_FILE, for the rest of t, at a
// clouds.yaml whose cloud "lab" authenticates at authURL.
func writeClouds(t *testing.T, authURL string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clouds.yaml")
	body := fmt.Sprintf(`clouds:
  lab:
    auth: {auth_url: %s, username: admin, password: secret, project_name: admin,
           user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
`, authURL)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", path)
	for _, k := range []string{"OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_REGION_NAME", "OS_CACERT"} {
		t.Setenv(k, "")
	}
}

func TestConnectMapsDCsToCloudRegionAndShares(t *testing.T) {
	ks := startKeystone(t)
	writeClouds(t, ks.url+"/v3")
	cfg := Config{DCs: map[string]DCConfig{
		"dc-a": {Cloud: "lab", AvailabilityZone: "az-a"},
		"dc-b": {Cloud: "lab", AvailabilityZone: "az-b"},
		"dc-c": {Cloud: "lab", Region: "RegionTwo"},
	}}
	clients, err := Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := clients["dc-a"].Compute.Endpoint; got != ks.url+"/RegionOne/compute/v2.1/" {
		t.Errorf("dc-a compute endpoint %s", got)
	}
	if got := clients["dc-c"].Compute.Endpoint; got != ks.url+"/RegionTwo/compute/v2.1/" {
		t.Errorf("dc-c compute endpoint %s", got)
	}
	if clients["dc-a"].Compute != clients["dc-b"].Compute {
		t.Error("two AZs of one cloud and region should share one client")
	}
	if clients["dc-a"].Compute.Microversion != ComputeMicroversion || clients["dc-a"].Image == nil {
		t.Errorf("compute microversion %q, image client %v", clients["dc-a"].Compute.Microversion, clients["dc-a"].Image)
	}
	if _, tokens := ks.counts(); tokens != 2 {
		t.Errorf("%d authentications, want one per (cloud, region)", tokens)
	}
	if clients["dc-a"].Compute.ProviderClient.ReauthFunc == nil {
		t.Error("tokens would not be renewed")
	}
}

// A bad configuration fails Connect at once: no backoff wait. That
// includes a Keystone whose certificate the CA bundle does not verify, a
// host DNS does not know and a URL the HTTP client cannot use: the HTTP
// client's error is a net.Error for all three, yet no retry mends them.
func TestConnectErrorsNameTheDC(t *testing.T) {
	ks := startKeystone(t)
	untrusted := httptest.NewUnstartedServer(ks)
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // its handshake errors
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	cases := []struct {
		name    string
		authURL string // clouds.yaml's auth_url; "" is the fake Keystone
		dc      DCConfig
		want    []string
	}{
		{"unknown cloud", "", DCConfig{Cloud: "nope"}, []string{`datacenter dc-x (cloud "nope"): cloud nope does not exist`}},
		{"missing CA bundle", "", DCConfig{Cloud: "lab", CACert: "/nonexistent/ca.pem"}, []string{"CA bundle"}},
		{"unknown region", "", DCConfig{Cloud: "lab", Region: "Mars"}, []string{`compute endpoint (region "Mars")`}},
		{"untrusted certificate", untrusted.URL + "/v3", DCConfig{Cloud: "lab"},
			[]string{`datacenter dc-x (cloud "lab")`, IdentityService, "certificate does not verify", "cacert", "auth_url", "x509"}},
		{"unknown host", "http://keystone.invalid/v3", DCConfig{Cloud: "lab"},
			[]string{`datacenter dc-x (cloud "lab")`, IdentityService, `host "keystone.invalid" is unknown to DNS`, "auth_url", "no such host"}},
		{"bad URL scheme", "htp://127.0.0.1:1/v3", DCConfig{Cloud: "lab"},
			[]string{`datacenter dc-x (cloud "lab")`, IdentityService, "auth_url", `unsupported protocol scheme "htp"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.authURL == "" {
				tc.authURL = ks.url + "/v3"
			}
			writeClouds(t, tc.authURL)
			nxdomainDNS(t)
			clk := newHookClock(nil)
			_, _, err := connectIn(clk, Config{DCs: map[string]DCConfig{"dc-x": tc.dc}})
			if err == nil || errors.Is(err, errTransient) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want %q in it", err, w)
				}
			}
			if n := clk.waits.Load(); n != 0 {
				t.Fatalf("%d backoff waits: a bad configuration was retried (%v)", n, err)
			}
			t.Log(err)
		})
	}
}

// nxdomainDNS points the resolver, for the rest of t, at a DNS server on
// loopback that answers every query "no such name" (NXDOMAIN), as a real
// one does for a mistyped host: the test needs no network.
func nxdomainDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12 // the header, then the question's name, type and class
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if n < 12 || end > n {
				continue
			}
			resp := append([]byte(nil), q[:end]...)
			resp[2] = 0x80 | q[2]&0x01        // an answer; recursion desired as asked
			resp[3] = 0x80 | 3                // recursion available; NXDOMAIN
			copy(resp[6:12], make([]byte, 6)) // no answer, authority or additional records
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	r := net.DefaultResolver
	preferGo, dial := r.PreferGo, r.Dial
	r.PreferGo = true
	r.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "udp", pc.LocalAddr().String())
	}
	t.Cleanup(func() { r.PreferGo, r.Dial = preferGo, dial })
}
