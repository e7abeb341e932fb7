package openstack

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	th "github.com/gophercloud/gophercloud/v2/testhelper"
)

// fakeKeystone answers password auth with a catalog holding compute and
// image endpoints in two regions.
func fakeKeystone(t *testing.T) (th.FakeServer, *int) {
	ks := th.SetupHTTP()
	t.Cleanup(ks.Teardown)
	auths := 0
	ks.Mux.HandleFunc("/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		auths++
		th.TestMethod(t, r, "POST")
		base := ks.Server.URL
		ep := func(region, path string) string {
			return fmt.Sprintf(`{"id": "%s%s", "interface": "public", "region": "%s", "region_id": "%s", "url": "%s/%s/%s"}`,
				region, path, region, region, base, region, path)
		}
		w.Header().Set("X-Subject-Token", "tok")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00Z",
			"project": {"id": "p1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
			"user": {"id": "u1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
			"catalog": [
			  {"type": "compute", "name": "nova", "id": "c", "endpoints": [%s, %s]},
			  {"type": "image", "name": "glance", "id": "i", "endpoints": [%s, %s]}]}}`,
			ep("RegionOne", "compute/v2.1"), ep("RegionTwo", "compute/v2.1"), ep("RegionOne", "image/v2"), ep("RegionTwo", "image/v2"))
	})
	return ks, &auths
}

func writeClouds(t *testing.T, authURL string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clouds.yaml")
	body := fmt.Sprintf(`clouds:
  lab:
    auth: {auth_url: %s/v3, username: admin, password: secret, project_name: admin,
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
	ks, auths := fakeKeystone(t)
	writeClouds(t, ks.Server.URL)
	cfg := Config{DCs: map[string]DCConfig{
		"dc-a": {Cloud: "lab", AvailabilityZone: "az-a"},
		"dc-b": {Cloud: "lab", AvailabilityZone: "az-b"},
		"dc-c": {Cloud: "lab", Region: "RegionTwo"},
	}}
	clients, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := clients["dc-a"].Compute.Endpoint; got != ks.Server.URL+"/RegionOne/compute/v2.1/" {
		t.Errorf("dc-a compute endpoint %s", got)
	}
	if got := clients["dc-c"].Compute.Endpoint; got != ks.Server.URL+"/RegionTwo/compute/v2.1/" {
		t.Errorf("dc-c compute endpoint %s", got)
	}
	if clients["dc-a"].Compute != clients["dc-b"].Compute {
		t.Error("two AZs of one cloud and region should share one client")
	}
	if clients["dc-a"].Compute.Microversion != ComputeMicroversion || clients["dc-a"].Image == nil {
		t.Errorf("compute microversion %q, image client %v", clients["dc-a"].Compute.Microversion, clients["dc-a"].Image)
	}
	if *auths != 2 {
		t.Errorf("%d authentications, want one per (cloud, region)", *auths)
	}
	if clients["dc-a"].Compute.ProviderClient.ReauthFunc == nil {
		t.Error("tokens would not be renewed")
	}
}

func TestConnectErrorsNameTheDC(t *testing.T) {
	ks, _ := fakeKeystone(t)
	writeClouds(t, ks.Server.URL)
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
			_, err := Connect(ctx, Config{DCs: map[string]DCConfig{"dc-x": tc.dc}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
