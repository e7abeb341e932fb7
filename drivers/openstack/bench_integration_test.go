package openstack

// Benchmarks against the real Nova of deploy/openstack/up.sh (skipped
// without IMS_ORCH_OS_CLOUD, like TestIntegrationNova):
//
//	go test -run '^$' -bench 'Launch50|VanishToReplacement' -benchtime 3x ./drivers/openstack/
//
// BenchmarkLaunch50 times, in every iteration, 50 servers launched to ACTIVE
// twice: by 50 direct gophercloud creates with the driver's own client and
// request body (then one list poll every 250 ms until all are ACTIVE), and
// by one Reconciler pass (look-up by id, create, per-server wait) with the
// same concurrency. The order alternates between iterations so a change in
// machine load hits both. Metrics: direct-s, driver-s, overhead-%.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

const benchN = 50

func BenchmarkLaunch50(b *testing.B) {
	cfg := integrationConfig(b)
	cfg.Parallelism = benchN
	// 50 creates queue in Nova's one API worker: on a busy 2-core machine the
	// last answer comes after ~50 s (both paths share this client and timeout)
	cfg.RequestTimeout = Duration(3 * time.Minute)
	d := connectTB(b, cfg)
	defer d.Close()
	sweep(b, d) // this run's leftovers (another run's: connectTB fails)
	defer func() {
		sweep(b, d)
		d.DeleteGroups(context.Background())
	}()
	ctx := context.Background()
	specs := make(staticSet, benchN)
	for i := range specs {
		specs[i] = drivers.Spec{ID: fmt.Sprintf("bench.%02d", i), DC: "dc-a", VNF: "bench"}
	}
	// resolve image, flavor and group once, as the driver caches them
	opts, err := d.createOpts(ctx, specs[0])
	if err != nil {
		b.Fatal(err)
	}
	group, err := d.ensureGroup(ctx, "dc-a", "bench")
	if err != nil {
		b.Fatal(err)
	}
	client := d.clients["dc-a"].Compute

	direct := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, benchN)
		for i := range benchN {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := opts
				o.Name = specs[i].ID
				o.Metadata = map[string]string{}
				for k, v := range opts.Metadata {
					o.Metadata[k] = v
				}
				o.Metadata[drivers.MetaID] = specs[i].ID
				if _, err := servers.Create(ctx, client, o, servers.SchedulerHintOpts{Group: group}).Extract(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("direct create: %v", err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			list, err := d.List(ctx, "dc-a")
			if err != nil {
				b.Fatal(err)
			}
			active := 0
			for _, in := range list {
				switch in.State {
				case drivers.StateActive:
					active++
				case drivers.StateError:
					b.Fatalf("direct: %s went to ERROR", in.ID)
				}
			}
			if active == benchN {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				b.Fatalf("direct: %d/%d ACTIVE after 5 minutes", active, benchN)
			}
			time.Sleep(250 * time.Millisecond) // real cloud, real time
		}
	}
	viaDriver := func() time.Duration {
		r := &Reconciler{Cloud: d, Desired: specs, Clock: clock.Real{}, Grace: time.Hour, Parallelism: benchN}
		start := time.Now()
		rep, err := r.Reconcile(ctx)
		if err != nil || len(rep.Launched) != benchN {
			b.Fatalf("driver: launched %d, failed %v, deferred %v, err %v", len(rep.Launched), rep.Failed, rep.Deferred, err)
		}
		return time.Since(start)
	}

	var sumDirect, sumDriver time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runs := []func() time.Duration{direct, viaDriver}
		if i%2 == 1 {
			runs = []func() time.Duration{viaDriver, direct}
		}
		for j, run := range runs {
			took := run()
			if (i%2 == 0) == (j == 0) {
				sumDirect += took
			} else {
				sumDriver += took
			}
			b.StopTimer()
			sweep(b, d)
			b.StartTimer()
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(sumDirect.Seconds()/n, "direct-s")
	b.ReportMetric(sumDriver.Seconds()/n, "driver-s")
	b.ReportMetric(100*(sumDriver.Seconds()-sumDirect.Seconds())/sumDirect.Seconds(), "overhead-%")
}

// BenchmarkVanishToReplacement deletes one server of a 6-member pool behind
// ims-orch's back and times until the poller reported it gone and until the
// reconciler (triggered by that event) has its replacement ACTIVE.
// "hard-full": anti-affinity, k = 2, 6 members on the 3 hosts of dc-a's zone
// (every host full: Nova's scheduler must first see the deleted server gone).
// "soft": soft-anti-affinity, room everywhere.
func BenchmarkVanishToReplacement(b *testing.B) {
	for _, mode := range []struct {
		name string
		pool string
	}{{"hard-full", "pcscf"}, {"soft", "bench"}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := integrationConfig(b)
			d := connectTB(b, cfg)
			defer d.Close()
			sweep(b, d) // this run's leftovers (another run's: connectTB fails)
			defer func() {
				sweep(b, d)
				d.DeleteGroups(context.Background())
			}()
			ctx := context.Background()
			desired := make(staticSet, 6)
			for i := range desired {
				desired[i] = drivers.Spec{ID: fmt.Sprintf("dc-a.%s.%d", mode.pool, i), DC: "dc-a", VNF: mode.pool}
			}
			r := NewReconciler(d, desired, clock.Real{})
			for pass := 0; ; pass++ {
				rep, err := r.Reconcile(ctx)
				if err == nil && rep.Complete() {
					break
				}
				if pass == 2 {
					b.Fatalf("fill: %v %v", err, rep.Failed)
				}
			}
			gone := make(chan string, 64)
			cancel := d.Subscribe(func(e drivers.Event) {
				if e.State == drivers.StateGone {
					gone <- e.ID
				}
			})
			defer cancel()
			trigger := make(chan struct{}, 1)
			reports := make(chan Report, 64)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.Run(runCtx, time.Minute, trigger, func(rep Report, err error) { reports <- rep })
			}()
			defer func() { stop(); <-done }()
			<-reports
			time.Sleep(2 * time.Duration(cfg.PollInterval)) // let the poller take its baseline (real cloud, real time)
			var sumDetect, sumReplace time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				list, err := d.List(ctx, "dc-a")
				if err != nil {
					b.Fatal(err)
				}
				victim := list[i%len(list)]
				start := time.Now()
				if err := d.deleteServer(ctx, d.clients["dc-a"].Compute, victim.CloudID); err != nil {
					b.Fatal(err)
				}
				var detected time.Duration
				timeout := time.After(5 * time.Minute)
			wait:
				for {
					select {
					case id := <-gone:
						if id == victim.ID && detected == 0 {
							detected = time.Since(start)
							trigger <- struct{}{}
						}
					case rep := <-reports:
						for _, k := range rep.Launched {
							if k == key(victim.DC, victim.ID) {
								break wait
							}
						}
					case <-timeout:
						b.Fatalf("%s not replaced within 5 minutes", victim.ID)
					}
				}
				sumDetect += detected
				sumReplace += time.Since(start)
			}
			b.StopTimer()
			b.ReportMetric(sumDetect.Seconds()/float64(b.N), "detect-s")
			b.ReportMetric(sumReplace.Seconds()/float64(b.N), "replaced-active-s")
		})
	}
}
