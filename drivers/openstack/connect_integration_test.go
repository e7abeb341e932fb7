package openstack

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/openstack/novafaulttest"
)

// Connect against the real Keystone (scripts/ci-openstack.sh; skipped
// without IMS_ORCH_OS_CLOUD) through a fault proxy in front of it, as the
// daemon connects (a clouds.yaml entry, whose auth_url is the proxy's):
// Keystone's transient failures at the daemon's start are retried and the
// clients it then returns work against the real Nova; a password the real
// Keystone refuses is not retried. What happened is counted at the proxy:
// the token requests its rules failed and the answers Keystone gave (201:
// a token issued, 401: the password refused).
func TestIntegrationConnectRetriesKeystone(t *testing.T) {
	cfg := integrationConfig(t)
	cfg.Retries = 3
	cfg.RetryBase = Duration(200 * time.Millisecond)
	cfg.RequestTimeout = Duration(5 * time.Second) // a held answer is lost after it
	direct := connectTB(t, cfg)                    // creates nothing on Nova: no sweep
	t.Cleanup(func() { _ = direct.Close() })
	keystone, err := novafaulttest.Start(direct.clients["dc-a"].Compute.IdentityBase)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keystone.Close() })
	cloud, clouds := cfg.DCs["dc-a"].Cloud, os.Getenv("OS_CLIENT_CONFIG_FILE")
	proxiedCloudsYAML(t, cloud, keystone)
	r := &cloudRig{faultRig: &faultRig{t: t}, keystone: keystone} // its faults()
	answered := func(status int) func() int {
		before := keystone.Answered("POST", tokensPath, status)
		return func() int { return keystone.Answered("POST", tokensPath, status) - before }
	}
	connect := func(name string, rules ...novafaulttest.Rule) (map[string]Clients, int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var clients map[string]Clients
		fired, err := r.faults("Connect: "+name, map[*novafaulttest.Proxy][]novafaulttest.Rule{keystone: rules},
			func() (err error) { clients, err = Connect(ctx, cfg, nil); return err })
		return clients, fired[keystone], err
	}
	// works: the clients are on the proxy and the real Nova takes their
	// token (a list of the project's servers)
	works := func(name string, clients map[string]Clients) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, dc := range sortedKeys(cfg.DCs) {
			c := clients[dc].Compute
			if c == nil || !strings.HasPrefix(c.IdentityEndpoint, keystone.URL()+"/") {
				t.Fatalf("%s: %s's client %v does not authenticate at the Keystone proxy %s", name, dc, c, keystone.URL())
			}
			if _, err := taggedServers(ctx, c); err != nil {
				t.Fatalf("%s: %s: the real Nova refuses the token Connect got: %v", name, dc, err)
			}
		}
	}
	refuse503 := novafaulttest.Rule{Method: "POST", Path: tokensPath, Action: novafaulttest.Refuse, Status: 503, Body: body(t, "unavailable_503.json")}

	// ---- Keystone refusing the first two authentications (503): the
	// third gets the one token Keystone issues
	issued := answered(201)
	rl := refuse503
	rl.Times = 2
	clients, fired, err := connect("Keystone 503 twice", rl)
	if err != nil || fired != 2 || issued() != 1 {
		t.Fatalf("Connect with Keystone refusing twice: %v; %d refused, %d tokens issued; want success, 2, 1", err, fired, issued())
	}
	works("503 twice", clients)

	// ---- Keystone's answer lost twice (the connection closed after
	// Keystone issued the token): the third attempt's token is used
	issued = answered(201)
	clients, fired, err = connect("answer lost twice", novafaulttest.Rule{Method: "POST", Path: tokensPath, Times: 2, Action: novafaulttest.Drop})
	if err != nil || fired != 2 || issued() != 3 {
		t.Fatalf("Connect with Keystone's answer lost twice: %v; %d lost, %d tokens issued; want success, 2, 3", err, fired, issued())
	}
	works("answer lost twice", clients)

	// ---- Keystone's answer held past the request timeout (5 s) once
	issued = answered(201)
	clients, fired, err = connect("answer held past the timeout", novafaulttest.Rule{Method: "POST", Path: tokensPath, Times: 1, Action: novafaulttest.Hold})
	if err != nil || fired != 1 || issued() != 2 {
		t.Fatalf("Connect with Keystone's answer held once: %v; %d held, %d tokens issued; want success, 1, 2", err, fired, issued())
	}
	works("answer held", clients)

	// ---- Keystone refusing every authentication: Connect gives up after
	// its retries, naming the datacenter, Keystone and its answer
	issued = answered(201)
	_, fired, err = connect("Keystone 503 throughout", refuse503)
	for _, want := range []string{"datacenter dc-a", "gave up after 3 retries", IdentityService, "HTTP 503"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Connect with Keystone refusing throughout: %v, want an error with %q", err, want)
		}
	}
	if fired != cfg.Retries+1 || issued() != 0 {
		t.Fatalf("Connect with Keystone refusing throughout: %d refused, %d tokens issued; want %d, 0", fired, issued(), cfg.Retries+1)
	}

	// ---- a password the real Keystone refuses (401): not retried
	t.Setenv("OS_CLIENT_CONFIG_FILE", clouds) // the copy of the real one, not of the copy
	proxiedCloudsYAML(t, cloud, keystone, func(auth map[string]any) { auth["password"] = "not-the-password" })
	refused, issued := answered(401), answered(201)
	_, fired, err = connect("password refused")
	if err == nil || errors.Is(err, errTransient) || !strings.Contains(err.Error(), IdentityService) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("Connect with a wrong password: %v, want a permanent error naming the %s and HTTP 401", err, IdentityService)
	}
	if refused() != 1 || issued() != 0 || fired != 0 {
		t.Fatalf("Connect with a wrong password: Keystone refused %d authentications and issued %d tokens (%d faults); want 1, 0 (not retried)", refused(), issued(), fired)
	}
}
