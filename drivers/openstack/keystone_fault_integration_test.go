package openstack

// Keystone and Glance faults against the real OpenStack
// (scripts/ci-openstack.sh; skipped without IMS_ORCH_OS_CLOUD). The
// driver connects as the daemon does (Connect, a clouds.yaml entry) but
// with the entry's auth_url on a fault proxy in front of the real
// Keystone; that proxy passes Keystone's service catalog on rewritten to
// name the proxies in front of the real Nova and Glance
// (novafaulttest.StartEach), so every request of the driver — tokens,
// compute, image look-ups — goes through a proxy, and the test checks the
// driver's clients point there. An expired token is a real one: the
// driver gets a new token that Keystone then revokes before the driver
// used it anywhere (Nova and Glance cache a token they validated), so the
// real Nova or Glance answers the driver's next request 401 and
// gophercloud re-authenticates, through the Keystone proxy. What happened
// is counted on Nova's side: the servers Nova lists for each instance id,
// the creates and DELETEs Nova answered (202 and 204 apart from the 401s
// of the revoked token).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/drivers/openstack/novafaulttest"
)

// cloudRig is a faultRig whose driver reaches Keystone, Nova and Glance
// through a proxy each (faultRig.proxy is Nova's).
type cloudRig struct {
	*faultRig
	cfg              Config
	keystone, glance *novafaulttest.Proxy
}

var (
	tokensPath = regexp.MustCompile(`/v3/auth/tokens$`)
	imagesPath = regexp.MustCompile(`/v2/images$`)
)

// keystoneBody is Keystone's answer to a password it refuses.
const keystoneBody = `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`

func newCloudRig(t *testing.T) *cloudRig {
	cfg := integrationConfig(t)
	cfg.Retries = 3
	cfg.RetryBase = Duration(200 * time.Millisecond)
	cfg.RequestTimeout = Duration(10 * time.Second) // a held answer is lost after it
	direct := directTB(t, cfg)
	dc := direct.clients["dc-a"]
	if dc.Image == nil {
		t.Fatal("the cloud's catalog has no image service: the Glance faults need one")
	}
	ps, err := novafaulttest.StartEach(dc.Compute.IdentityBase, dc.Compute.Endpoint, dc.Image.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Cleanup(func() { _ = p.Close() })
	}
	keystone, nova, glance := ps[0], ps[1], ps[2]
	proxiedCloudsYAML(t, cfg.DCs["dc-a"].Cloud, keystone)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clients, err := Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("connect through the Keystone proxy: %v", err)
	}
	for _, name := range sortedKeys(clients) {
		c := clients[name]
		for _, e := range []struct{ what, url, via string }{
			{"identity", c.Compute.IdentityEndpoint, keystone.URL()},
			{"compute", c.Compute.Endpoint, nova.URL()},
			{"image", c.Image.Endpoint, glance.URL()},
		} {
			if !strings.HasPrefix(e.url, e.via+"/") {
				t.Fatalf("%s: the driver's %s endpoint is %s, not on its proxy %s", name, e.what, e.url, e.via)
			}
		}
	}
	clk := &skipClock{}
	d, err := New(cfg, clients, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	fr := &faultRig{t: t, d: d, direct: direct, proxy: nova, clk: clk, run: fmt.Sprint(time.Now().Unix() % 1000000)}
	return &cloudRig{faultRig: fr, cfg: cfg, keystone: keystone, glance: glance}
}

// proxiedCloudsYAML points OS_CLIENT_CONFIG_FILE, for the rest of t, at a
// copy of the clouds.yaml in use whose entry cloud authenticates at
// keystone (the proxy) instead of the real Keystone, its auth section
// changed further by edits.
func proxiedCloudsYAML(t *testing.T, cloud string, keystone *novafaulttest.Proxy, edits ...func(auth map[string]any)) {
	t.Helper()
	src := os.Getenv("OS_CLIENT_CONFIG_FILE")
	if src == "" {
		t.Fatal("OS_CLIENT_CONFIG_FILE is not set: the Keystone faults rewrite its auth_url (scripts/ci-openstack.sh sets it)")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	auth, _ := doc.Clouds[cloud]["auth"].(map[string]any)
	authURL, _ := auth["auth_url"].(string)
	if authURL == "" {
		t.Fatalf("%s: cloud %q has no auth.auth_url", src, cloud)
	}
	if auth["auth_url"], err = keystone.Via(authURL); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		e(auth)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", dst)
}

// revokeToken gives the driver a new token and has the real Keystone
// revoke it before the driver used it: Nova and Glance have not seen it
// (they cache a token they validated for minutes), so they refuse the
// driver's next request 401, as they do an expired token.
func (r *cloudRig) revokeToken() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pc := r.d.clients["dc-a"].Compute.ProviderClient
	if err := pc.Reauthenticate(ctx, ""); err != nil {
		r.t.Fatalf("a new token: %v", err)
	}
	tok := pc.Token()
	idc, err := openstack.NewIdentityV3(r.direct.clients["dc-a"].Compute.ProviderClient, gophercloud.EndpointOpts{})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := tokens.Revoke(ctx, idc, tok).Err; err != nil {
		r.t.Fatalf("revoke the driver's token: %v", err)
	}
}

// faults runs fn with the rules of each proxy in place and reports fn's
// error and how many requests each proxy's rules failed.
func (r *cloudRig) faults(name string, rules map[*novafaulttest.Proxy][]novafaulttest.Rule, fn func() error) (map[*novafaulttest.Proxy]int, error) {
	r.t.Helper()
	for p, rs := range rules {
		for _, rl := range rs {
			p.Fail(rl)
		}
	}
	t0 := time.Now()
	err := fn()
	fired := map[*novafaulttest.Proxy]int{}
	for p := range rules {
		fired[p] = p.Fired()
		p.Clear()
	}
	r.t.Logf("%-52s %6.2f s: err %v", name, time.Since(t0).Seconds(), err)
	return fired, err
}

// answered is how many requests of method on path Nova answered with
// status since the count before (a func of the proxy's count now).
func (r *cloudRig) answered(method string, path *regexp.Regexp, status int) func() int {
	before := r.proxy.Answered(method, path, status)
	return func() int { return r.proxy.Answered(method, path, status) - before }
}

// forgetImages empties the driver's image cache: the next launch looks
// its image up in Glance again.
func (r *cloudRig) forgetImages() {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.images = map[string]string{}
}

func TestIntegrationKeystoneGlanceFaults(t *testing.T) {
	r := newCloudRig(t)
	ctx := context.Background()
	d := r.d
	refuse503 := novafaulttest.Rule{Method: "POST", Path: tokensPath, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")}
	times := func(rl novafaulttest.Rule, n int) novafaulttest.Rule { rl.Times = n; return rl }

	// (Connect under Keystone's faults: TestIntegrationConnectRetriesKeystone)

	// the image, flavor and group of the DC are known from here on: the
	// first request after a token is revoked is the one the step names
	warm := r.spec("warm")
	if _, err := d.LaunchActive(ctx, warm); err != nil {
		t.Fatalf("a launch through the three proxies: %v", err)
	}
	r.one(warm.ID, "launched through the proxies")

	// ---- a create refused 401 (token revoked), Keystone refusing the
	// first two re-authentications (503) then answering: retried, one
	// create taken by Nova, one server
	for _, c := range []struct {
		name  string
		rules []novafaulttest.Rule
		fired int
	}{
		{"reauth503", []novafaulttest.Rule{times(refuse503, 2)}, 2},
		// held past the driver's request timeout (10 s): Keystone issued
		// a token the driver never got
		{"reauthheld", []novafaulttest.Rule{{Method: "POST", Path: tokensPath, Times: 1, Action: novafaulttest.Hold}}, 1},
	} {
		s := r.spec(c.name)
		r.revokeToken()
		taken, refused := r.answered("POST", createPath, 202), r.answered("POST", createPath, 401)
		fired, err := r.faults("LaunchNew: create 401, re-auth "+c.name, map[*novafaulttest.Proxy][]novafaulttest.Rule{r.keystone: c.rules},
			func() error { _, err := d.LaunchNew(ctx, s); return err })
		if err != nil || fired[r.keystone] != c.fired || taken() != 1 || refused() != 1 {
			t.Fatalf("LaunchNew with a revoked token and Keystone failing (%s): %v; %d re-auths failed, Nova took %d creates and refused %d with 401; want success, %d, 1, 1",
				c.name, err, fired[r.keystone], taken(), refused(), c.fired)
		}
		r.one(s.ID, "re-auth "+c.name)
	}

	// ---- Keystone refusing every re-authentication: the launch gives
	// up after its retries naming Keystone, Nova took no create; the
	// caller's next launch, Keystone back, makes the one server
	sd := r.spec("keystonedown")
	r.revokeToken()
	taken := r.answered("POST", createPath, 202)
	fired, err := r.faults("LaunchNew: Keystone down", map[*novafaulttest.Proxy][]novafaulttest.Rule{r.keystone: {refuse503}},
		func() error { _, err := d.LaunchNew(ctx, sd); return err })
	if err == nil || !strings.Contains(err.Error(), IdentityService) || !strings.Contains(err.Error(), "gave up after 3 retries") ||
		fired[r.keystone] != r.cfg.Retries+1 || taken() != 0 {
		t.Fatalf("LaunchNew with Keystone down: %v; %d re-auths refused, %d creates taken; want gave up naming the %s, %d, 0",
			err, fired[r.keystone], taken(), IdentityService, r.cfg.Retries+1)
	}
	if l := r.onNova(sd.ID); len(l) != 0 {
		t.Fatalf("a launch that never had a token left %s", describe(l))
	}
	if _, err := d.Launch(ctx, sd); err != nil {
		t.Fatalf("Launch once Keystone is back: %v", err)
	}
	r.one(sd.ID, "launched again once Keystone is back")

	// ---- Keystone refusing the credentials (401): not retried
	sc := r.spec("badcreds")
	r.revokeToken()
	fired, err = r.faults("LaunchNew: Keystone refuses the password", map[*novafaulttest.Proxy][]novafaulttest.Rule{
		r.keystone: {{Method: "POST", Path: tokensPath, Action: novafaulttest.Refuse, Status: 401, Body: keystoneBody}}},
		func() error { _, err := d.LaunchNew(ctx, sc); return err })
	if err == nil || errors.Is(err, errTransient) || !strings.Contains(err.Error(), IdentityService) || fired[r.keystone] != 1 {
		t.Fatalf("LaunchNew with the password refused: %v (%d refused), want a permanent error naming the %s, 1 re-auth", err, fired[r.keystone], IdentityService)
	}
	if l := r.onNova(sc.ID); len(l) != 0 {
		t.Fatalf("a launch without credentials left %s", describe(l))
	}

	// ---- a Terminate whose list is refused 401 (token revoked) and
	// whose re-authentication Keystone refuses once: retried, Nova takes
	// one DELETE, the server is gone
	sv := r.one(sd.ID, "before Terminate")
	r.revokeToken()
	deleted := r.answered("DELETE", deletePath(sv.ID), 204)
	fired, err = r.faults("Terminate: list 401, re-auth 503 once", map[*novafaulttest.Proxy][]novafaulttest.Rule{r.keystone: {times(refuse503, 1)}},
		func() error { return d.Terminate(ctx, "dc-a", sd.ID) })
	if err != nil || fired[r.keystone] != 1 || deleted() != 1 {
		t.Fatalf("Terminate with a revoked token and Keystone refusing once: %v; %d refused, Nova took %d DELETEs; want success, 1, 1", err, fired[r.keystone], deleted())
	}
	r.goneFromNova(sd.ID, "Terminate through a re-authentication")

	// ---- Glance's image look-up refused twice (503): retried, one server
	listImages := func() int { return r.glance.Forwarded("GET", imagesPath) }
	sg := r.spec("glance503")
	r.forgetImages()
	imgs := listImages()
	fired, err = r.faults("Launch: image list 503 twice", map[*novafaulttest.Proxy][]novafaulttest.Rule{
		r.glance: {{Method: "GET", Path: imagesPath, Times: 2, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")}}},
		func() error { _, err := d.Launch(ctx, sg); return err })
	if err != nil || fired[r.glance] != 2 || listImages()-imgs != 1 {
		t.Fatalf("Launch with Glance refusing twice: %v; %d refused, %d image lists reached Glance; want success, 2, 1", err, fired[r.glance], listImages()-imgs)
	}
	r.one(sg.ID, "Glance refused twice")

	// ---- Glance down: the launch gives up naming Glance, no create
	// reached Nova
	sgd := r.spec("glancedown")
	r.forgetImages()
	creates := r.proxy.Forwarded("POST", createPath)
	fired, err = r.faults("Launch: Glance down", map[*novafaulttest.Proxy][]novafaulttest.Rule{
		r.glance: {{Method: "GET", Path: imagesPath, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")}}},
		func() error { _, err := d.Launch(ctx, sgd); return err })
	if err == nil || !strings.Contains(err.Error(), ImageService) || fired[r.glance] != r.cfg.Retries+1 || r.proxy.Forwarded("POST", createPath) != creates {
		t.Fatalf("Launch with Glance down: %v; %d refused, %d creates reached Nova; want gave up naming the %s, %d, 0",
			err, fired[r.glance], r.proxy.Forwarded("POST", createPath)-creates, ImageService, r.cfg.Retries+1)
	}
	if l := r.onNova(sgd.ID); len(l) != 0 {
		t.Fatalf("a launch without its image left %s", describe(l))
	}

	// ---- Glance refusing the revoked token (401): re-authenticated
	// (Keystone answers), looked up, launched
	sgt := r.spec("glance401")
	r.forgetImages()
	r.revokeToken()
	refused := func(before int) int { return r.glance.Answered("GET", imagesPath, http.StatusUnauthorized) - before }
	g401 := r.glance.Answered("GET", imagesPath, http.StatusUnauthorized)
	if _, err := d.Launch(ctx, sgt); err != nil || refused(g401) != 1 {
		t.Fatalf("Launch with the token revoked at Glance's look-up: %v; Glance refused %d look-ups 401, want success, 1", err, refused(g401))
	}
	r.one(sgt.ID, "Glance's 401 re-authenticated")

	// nothing of the run left but the servers above, each once; the
	// clean-up's sweep deletes them
	if n, err := rawOurs(ctx, r.direct); err != nil || n != 5 {
		t.Errorf("Nova lists %d servers of the run (%v), want 5 (warm, reauth503, reauthheld, glance503, glance401: none of the failed launches, keystonedown terminated)", n, err)
	}
}
