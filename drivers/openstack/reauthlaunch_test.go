package openstack

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/clock"
)

// revN LOW-1: a launch whose every create Nova refused with 401 (a revoked
// token) and whose re-authentications Keystone answered 503 gives up after
// its retries (Keystone's failure is transient) with a definite answer:
// gophercloud re-sent no create, so Nova did nothing and will commit
// nothing later. A List asked a second after the return shows what Nova
// has, and the launch is forgotten at once — unlike a create without an
// answer (TestTerminateDeletesAServerALaunchGaveUpOn), held unshown for a
// RequestTimeout.
func TestALaunchWhoseReauthenticationFailedIsADefiniteAnswer(t *testing.T) {
	f := newFakeNova(t)
	c := f.clients()
	var reauths atomic.Int32
	c.Compute.ProviderClient.ReauthFunc = func(context.Context) error {
		reauths.Add(1)
		return gophercloud.ErrUnexpectedResponseCode{Actual: 503, Body: []byte("Keystone unavailable")}
	}
	clk := clock.NewVirtual(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	d, err := New(testConfig(), map[string]Clients{"dc-a": c, "dc-b": c}, clk)
	th.AssertNoErr(t, err)
	t.Cleanup(func() { d.Close() })
	quiet(d)
	attempts := d.cfg.Retries + 1
	for range attempts {
		f.inject("create", fault{status: 401, file: "unauthorized_401.json"})
	}
	f.reqs.take()
	_, err = inVirtualTime(clk, func() ret { in, err := d.LaunchNew(ctx, spec("dc-a", "k1")); return ret{in, err} }).unpack()
	if err == nil || !errors.Is(err, errTransient) || !errors.Is(err, errTokenRefused) || !strings.Contains(err.Error(), IdentityService) {
		t.Fatalf("LaunchNew with every create refused 401 and Keystone answering 503: %v, want a transient error naming the %s", err, IdentityService)
	}
	if got, reqs := int(reauths.Load()), f.reqs.take(); got != attempts || reqs["POST /servers"] != attempts || len(f.servers) != 0 {
		t.Fatalf("%d re-authentications, requests %v, %d servers; want %d, %d creates, none", got, reqs, len(f.servers), attempts, attempts)
	}
	clk.Advance(time.Second)
	if _, ok := listed(t, d, "k1"); ok {
		t.Fatal("k1 listed, Nova has no server of it")
	}
	if n := launchMarks(d); n != 0 {
		t.Fatalf("%d launch still unshown after a List a second after its return: a refused create was taken for one Nova may still commit", n)
	}
}
