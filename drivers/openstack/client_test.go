package openstack

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	requests, tokens int // requests seen, tokens issued
}

// keystoneFault answers one request in Keystone's place.
type keystoneFault func(w http.ResponseWriter, r *http.Request)

// startKeystone serves a keystoneFake on loopback for the rest of t.
func startKeystone(t *testing.T, faults ...keystoneFault) *keystoneFake {
	k := &keystoneFake{t: t, faults: faults}
	srv := httptest.NewServer(k)
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

// A bad configuration fails Connect at once: no backoff wait.
func TestConnectErrorsNameTheDC(t *testing.T) {
	ks := startKeystone(t)
	writeClouds(t, ks.url+"/v3")
	cases := []struct {
		name string
		dc   DCConfig
		want string
	}{
		{"unknown cloud", DCConfig{Cloud: "nope"}, `datacenter dc-x (cloud "nope"): cloud nope does not exist`},
		{"missing CA bundle", DCConfig{Cloud: "lab", CACert: "/nonexistent/ca.pem"}, "CA bundle"},
		{"unknown region", DCConfig{Cloud: "lab", Region: "Mars"}, `compute endpoint (region "Mars")`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newHookClock(nil)
			_, _, err := connectIn(clk, Config{DCs: map[string]DCConfig{"dc-x": tc.dc}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errTransient) {
				t.Fatalf("err = %v, want %q, not transient", err, tc.want)
			}
			if n := clk.waits.Load(); n != 0 {
				t.Fatalf("%d backoff waits: a bad configuration was retried", n)
			}
		})
	}
}
