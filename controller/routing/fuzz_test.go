package routing

import (
	"math"
	"testing"
)

func FuzzDecodeTag(f *testing.F) {
	f.Add(uint16(0), 3)
	f.Add(uint16(0xffff), 128)
	f.Add(uint16(5<<9|2<<2|1), 8)
	f.Add(uint16(1), -1)
	f.Fuzz(func(t *testing.T, port uint16, n int) {
		tag, err := DecodeTag(port, n)
		if err != nil {
			return
		}
		if n < 1 || n > MaxDCs || tag.Entry < 0 || tag.Entry >= n || tag.Exit < 0 || tag.Exit >= n || tag.Interval > 3 {
			t.Fatalf("DecodeTag(%#04x, %d) accepted %v", port, n, tag)
		}
		back, err := tag.Encode()
		if err != nil || back != port {
			t.Fatalf("re-encode %v = %#04x, %v; want %#04x", tag, back, err, port)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(uint32(0x0d020001), uint16(4), 3, 3)
	f.Add(uint32(0xffffffff), uint16(0), 1, 1)
	f.Add(uint32(0), uint16(0xffff), 200, 9)
	f.Fuzz(func(t *testing.T, dst uint32, port uint16, n, m int) {
		h, err := DecodeHeader(IPv4(dst), port, n, m)
		if err != nil {
			return
		}
		if m < 1 || m > MaxStages || h.Position < 1 || h.Position > m+1 || h.DC < 0 || h.DC >= n {
			t.Fatalf("DecodeHeader(%#08x, %#04x, %d, %d) = %+v", dst, port, n, m, h)
		}
		if int(StageByte(IPv4(dst), h.Position)) != h.DC {
			t.Fatalf("position %d byte is %d, header says %d", h.Position, StageByte(IPv4(dst), h.Position), h.DC)
		}
		for i := 1; i < h.Position; i++ {
			if int(StageByte(IPv4(dst), i)) < n {
				t.Fatalf("byte %d < n before position %d", i, h.Position)
			}
		}
	})
}

// FuzzRoute feeds arbitrary packets to every DC of a 3-DC deployment: no
// panic, counters add up, forwarded decisions are well formed.
func FuzzRoute(f *testing.F) {
	f.Add(uint8(1), uint32(0x0a000005), uint32(0xc0a80001), uint16(4000), uint16(5004), 1.0, uint8(0))
	f.Add(uint8(2), uint32(0x0a000005), uint32(0x0d020001), uint16(4000), uint16(4), 0.0, uint8(2))
	f.Add(uint8(2), uint32(0x0a000005), uint32(0x0d172101), uint16(4000), uint16(4), math.Inf(1), uint8(1))
	f.Add(uint8(7), uint32(0), uint32(0), uint16(0), uint16(0), math.NaN(), uint8(0))
	f.Fuzz(func(t *testing.T, from uint8, src, dst uint32, sport, dport uint16, load float64, dc uint8) {
		paths := pathMap{pr(0, 1): {0, 0, 2, 2, 1}, pr(1, 0): {1, 1, 2, 0, 0}, pr(0, 0): {0, 0, 0, 0, 0}}
		tables := newTables(t, 3, 3, 2, paths, false)
		c := Call{CallerDC: 0, CalleeDC: 1, CallerIP: 0x0a000005, CalleeIP: 0x0a010007,
			CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 6000, CalleeRecvPort: 6002,
			CallerEntryIP: 0xc0a80001, CalleeEntryIP: 0xc0a80101}
		for _, tb := range tables {
			if err := tb.AddCall(c); err != nil {
				t.Fatal(err)
			}
		}
		tb := tables[int(dc)%3]
		d := tb.Route(Packet{From: Arrival(from), Proto: 17, SrcIP: IPv4(src), DstIP: IPv4(dst), SrcPort: sport, DstPort: dport, Load: load})
		cs := tb.Counters()
		if cs.Decisions != 1 || cs.Forwarded+cs.TotalDropped() != 1 {
			t.Fatalf("counters %+v", cs)
		}
		_ = d.String()
		for _, r := range d.AppendRules(nil) {
			_ = r.String()
		}
		if d.Verdict == Drop {
			if d.Reason == NotDropped || cs.Drops(d.Reason) != 1 {
				t.Fatalf("drop without a counted reason: %v %+v", d, cs)
			}
			return
		}
		if !(d.Load > 0) || math.IsInf(d.Load, 0) {
			t.Fatalf("load %g", d.Load)
		}
		if d.Exit == (d.Next >= 0) || d.Next >= 3 || d.Next == tb.DC() {
			t.Fatalf("next %d exit %v", d.Next, d.Exit)
		}
		for s := d.First; s <= d.Last; s++ {
			if StageByte(d.DstIP, s) != d.Instances[s-1] || int(d.Instances[s-1]) < 3 {
				t.Fatalf("stage %d byte %d, instance %d", s, StageByte(d.DstIP, s), d.Instances[s-1])
			}
		}
		h, err := DecodeHeader(d.DstIP, d.DstPort, 3, 3)
		if err != nil || (!d.Exit && h.DC != d.Next) || (d.Exit && (h.Position != 4 || h.DC != tb.DC())) {
			t.Fatalf("rewritten header %+v, %v for %v", h, err, d)
		}
	})
}

func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"10.1.2.3", "::ffff:1.2.3.4", "2001:db8::1", "", "1.2.3", "256.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseIPv4(s)
		if err != nil {
			return
		}
		back, err := ParseIPv4(a.String())
		if err != nil || back != a {
			t.Fatalf("%q → %s → %v, %v", s, a, back, err)
		}
	})
}
