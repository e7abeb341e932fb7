package dataplane

import (
	"math/rand/v2"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// benchCompile measures Compile (pure, no switch) of DC 0 holding three
// path sets of n DCs (n² pairs, random paths with DC 0 on many of them)
// with per working instances in each of the 3 stages, and reports the rules
// it makes and how many of them are tag rules.
func benchCompile(b *testing.B, n, per int) {
	rng := rand.New(rand.NewPCG(1, 2))
	const m = 3
	t, err := routing.NewTable(routing.Config{DC: 0, N: n, Stages: m, Paths: randomPaths(rng, n, m)})
	if err != nil {
		b.Fatal(err)
	}
	for iv := uint64(1); iv <= 2; iv++ {
		if err := t.StoreNext(iv, randomPaths(rng, n, m)); err != nil {
			b.Fatal(err)
		}
		if iv == 1 {
			if err := t.Enter(iv); err != nil {
				b.Fatal(err)
			}
		}
	}
	var live [routing.MaxStages]map[uint8]Ports
	for s := 1; s <= m; s++ {
		live[s-1] = map[uint8]Ports{}
		var work []routing.InstanceLoad
		for i := 0; i < per; i++ {
			idx := uint8(n + i)
			live[s-1][idx] = InstancePorts(s, idx)
			work = append(work, routing.InstanceLoad{Index: idx, Load: float64(i)})
		}
		if err := t.SetInstances(s, work); err != nil {
			b.Fatal(err)
		}
	}
	in := Inputs{Table: t, Live: live, UsersMAC: UsersMAC(0)}
	var rules, tags int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fs, err := Compile(in)
		if err != nil {
			b.Fatal(err)
		}
		rules, tags = len(fs), 0
		for _, f := range fs {
			if f.Cookie>>48 == ovs.CookieTag>>48 {
				tags++
			}
		}
	}
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(tags), "tag-rules")
}

func BenchmarkCompile100Pairs1Instance(b *testing.B)   { benchCompile(b, 10, 1) }
func BenchmarkCompile100Pairs3Instances(b *testing.B)  { benchCompile(b, 10, 3) }
func BenchmarkCompile1024Pairs3Instances(b *testing.B) { benchCompile(b, 32, 3) }
