package routing

import (
	"syscall"
	"testing"
)

// benchSetup is the 3-DC deployment of threeDC with 4 instances per stage
// and `calls` calls from DC 0 users to DC 1 users.
func benchSetup(b *testing.B, calls int) ([]*Table, []Call) {
	paths := pathMap{pr(0, 1): {0, 0, 2, 2, 1}, pr(1, 0): {1, 1, 2, 0, 0}}
	tables := newTables(b, 3, 3, 4, paths, false)
	cs := make([]Call, calls)
	for i := range cs {
		cs[i] = callBetween(0, 1, i)
		for _, tb := range tables {
			if err := tb.AddCall(cs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	return tables, cs
}

// cpuTime is the process's user+system CPU time in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// measure runs the benchmark loop and reports, besides wall-clock ns/op,
// the CPU time per decision and decisions per CPU-second: on a shared,
// overloaded machine wall-clock time counts the time other processes held
// the core, CPU time does not.
func measure(b *testing.B, loop func()) {
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime(b)
	loop()
	cpu := cpuTime(b) - c0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/(float64(cpu)/1e9), "decisions/cpu-s")
	}
}

// BenchmarkRouteEntry: a new flow from a user (Table 1 lookup, tag, stage 1).
func BenchmarkRouteEntry(b *testing.B) {
	tables, cs := benchSetup(b, 4096)
	ps := make([]Packet, len(cs))
	for i, c := range cs {
		ps[i] = callerPacket(c)
	}
	tb := tables[0]
	measure(b, func() {
		for i := 0; i < b.N; i++ {
			if d := tb.Route(ps[i&4095]); d.Verdict != Forward {
				b.Fatal(d)
			}
		}
	})
}

// BenchmarkRouteTransit: a tagged flow through DC 2 (stages 2 and 3, tunnel on).
func BenchmarkRouteTransit(b *testing.B) {
	tables, cs := benchSetup(b, 1)
	p := tunnelled(tables[0].Route(callerPacket(cs[0])))
	tb := tables[2]
	measure(b, func() {
		for i := 0; i < b.N; i++ {
			if d := tb.Route(p); d.Verdict != Forward {
				b.Fatal(d)
			}
		}
	})
}

// BenchmarkRouteExit: a tagged flow leaving the chain at DC 1 (Table 1 mapping 4).
func BenchmarkRouteExit(b *testing.B) {
	tables, cs := benchSetup(b, 4096)
	ps := make([]Packet, len(cs))
	for i, c := range cs {
		ps[i] = tunnelled(tables[2].Route(tunnelled(tables[0].Route(callerPacket(c)))))
	}
	tb := tables[1]
	measure(b, func() {
		for i := 0; i < b.N; i++ {
			if d := tb.Route(ps[i&4095]); !d.Exit {
				b.Fatal(d)
			}
		}
	})
}

// BenchmarkRouteDrop: a flow tagged two intervals away (counted drop).
func BenchmarkRouteDrop(b *testing.B) {
	tables, _ := benchSetup(b, 1)
	port, _ := Tag{0, 1, 2}.Encode()
	p := Packet{From: FromTunnel, DstIP: 0x0d020001, DstPort: port}
	tb := tables[2]
	measure(b, func() {
		for i := 0; i < b.N; i++ {
			if d := tb.Route(p); d.Reason != DropUnknownInterval {
				b.Fatal(d)
			}
		}
	})
}
