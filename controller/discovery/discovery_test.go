package discovery

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"pgregory.net/rapid"
)

func mustServer(t testing.TB) *Server {
	t.Helper()
	s, err := New(Options{Zone: "dc0.ims.local", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty zone", Options{}, "Zone: empty"},
		{"bad zone", Options{Zone: "a..b"}, "not a domain name"},
		{"sub-second ttl", Options{Zone: "z", TTL: 500 * time.Millisecond}, "TTL"},
		{"fractional ttl", Options{Zone: "z", TTL: 1500 * time.Millisecond}, "TTL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	s, err := New(Options{Zone: "DC1.ims.local."})
	if err != nil || s.Zone() != "dc1.ims.local." || s.ttl != 1 {
		t.Fatalf("New = %+v, %v", s, err)
	}
}

func TestSetRecordsValidates(t *testing.T) {
	s := mustServer(t)
	tests := []struct {
		name    string
		service string
		addrs   []netip.AddrPort
		want    string
	}{
		{"empty service", "", nil, "service: empty"},
		{"upper case", "SCSCF", nil, "lower-case"},
		{"underscore", "_sip", nil, "lower-case"},
		{"dot", "a.b", nil, "lower-case"},
		{"ipv6", "scscf", []netip.AddrPort{ap("[::1]:5060")}, "addrs[0]"},
		{"port 0", "scscf", []netip.AddrPort{ap("127.10.2.1:5060"), ap("127.10.2.2:0")}, "addrs[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SetRecords(tc.service, tc.addrs); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if err := s.SetRecords("scscf", []netip.AddrPort{ap("127.10.2.2:5060"), ap("127.10.2.1:5060"), ap("127.10.2.2:5060")}); err != nil {
		t.Fatal(err)
	}
	if got := s.Records("scscf"); !slices.Equal(got, []netip.AddrPort{ap("127.10.2.1:5060"), ap("127.10.2.2:5060")}) {
		t.Fatalf("Records = %v (want sorted, deduplicated)", got)
	}
}

func TestAnswer(t *testing.T) {
	s := mustServer(t)
	if err := s.SetRecords("scscf", []netip.AddrPort{ap("127.10.2.1:5060"), ap("127.10.2.2:5070")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecords("pcscf", []netip.AddrPort{ap("127.10.1.1:5060")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		q      *dns.Msg
		rcode  int
		answer []string // RR strings without the header
		extra  int
		soa    bool
	}{
		{"pool A", query("scscf.dc0.ims.local.", dns.TypeA), dns.RcodeSuccess, []string{"127.10.2.1", "127.10.2.2"}, 0, false},
		{"case-insensitive", query("SCSCF.DC0.ims.local.", dns.TypeA), dns.RcodeSuccess, []string{"127.10.2.1", "127.10.2.2"}, 0, false},
		{"pool SRV", query("_sip._udp.scscf.dc0.ims.local.", dns.TypeSRV), dns.RcodeSuccess,
			[]string{"10 10 5060 127-10-2-1.scscf.dc0.ims.local.", "10 10 5070 127-10-2-2.scscf.dc0.ims.local."}, 2, false},
		{"target A", query("127-10-2-2.scscf.dc0.ims.local.", dns.TypeA), dns.RcodeSuccess, []string{"127.10.2.2"}, 0, false},
		{"pcscf pool", query("pcscf.dc0.ims.local.", dns.TypeA), dns.RcodeSuccess, []string{"127.10.1.1"}, 0, false},
		{"AAAA of a pool: no data", query("scscf.dc0.ims.local.", dns.TypeAAAA), dns.RcodeSuccess, nil, 0, true},
		{"NAPTR: no data", query("scscf.dc0.ims.local.", dns.TypeNAPTR), dns.RcodeSuccess, nil, 0, true},
		{"unknown service", query("icscf.dc0.ims.local.", dns.TypeA), dns.RcodeNameError, nil, 0, true},
		{"unknown target", query("127-10-2-9.scscf.dc0.ims.local.", dns.TypeA), dns.RcodeNameError, nil, 0, true},
		{"tcp SRV", query("_sip._tcp.scscf.dc0.ims.local.", dns.TypeSRV), dns.RcodeNameError, nil, 0, true},
		{"zone SOA", query("dc0.ims.local.", dns.TypeSOA), dns.RcodeSuccess, []string{"ns.dc0.ims.local. hostmaster.dc0.ims.local."}, 0, false},
		{"other zone", query("scscf.dc1.ims.local.", dns.TypeA), dns.RcodeRefused, nil, 0, false},
		{"no question", new(dns.Msg), dns.RcodeFormatError, nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Answer(tc.q)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if len(r.Answer) != len(tc.answer) {
				t.Fatalf("answer = %v, want %v", r.Answer, tc.answer)
			}
			for i, rr := range r.Answer {
				if rr.Header().Ttl != 2 {
					t.Errorf("TTL %d, want 2", rr.Header().Ttl)
				}
				if body := strings.TrimPrefix(rr.String(), rr.Header().String()); !strings.HasPrefix(body, tc.answer[i]) {
					t.Errorf("answer[%d] = %q, want %q", i, body, tc.answer[i])
				}
			}
			if len(r.Extra) != tc.extra {
				t.Errorf("extra = %v", r.Extra)
			}
			if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soa {
				t.Errorf("authority = %v, want SOA %v", r.Ns, tc.soa)
			}
			if _, err := r.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
	// withdrawing a pool makes its names vanish at once
	if err := s.SetRecords("scscf", nil); err != nil {
		t.Fatal(err)
	}
	if r := s.Answer(query("_sip._udp.scscf.dc0.ims.local.", dns.TypeSRV)); r.Rcode != dns.RcodeNameError {
		t.Fatalf("withdrawn pool rcode = %s", dns.RcodeToString[r.Rcode])
	}
	if r := s.Answer(nil); r.Rcode != dns.RcodeFormatError {
		t.Fatal("nil query answered")
	}
}

// Property: the SRV answer and its targets' A records name exactly the
// published set, whatever it is.
func TestSRVMatchesRecords(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, err := New(Options{Zone: "dc0.ims.local", TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := rapid.IntRange(0, 20).Draw(t, "n")
		var addrs []netip.AddrPort
		for i := 0; i < n; i++ {
			addrs = append(addrs, netip.AddrPortFrom(
				netip.AddrFrom4([4]byte{127, 10, 2, rapid.ByteRange(1, 254).Draw(t, "host")}),
				rapid.Uint16Range(1, 65535).Draw(t, "port")))
		}
		if err := s.SetRecords("scscf", addrs); err != nil {
			t.Fatal(err)
		}
		r := s.Answer(query(s.SRVName("scscf"), dns.TypeSRV))
		var got []netip.AddrPort
		for _, rr := range r.Answer {
			srv := rr.(*dns.SRV)
			a := s.Answer(query(srv.Target, dns.TypeA))
			if len(a.Answer) != 1 {
				t.Fatalf("target %s resolves to %v", srv.Target, a.Answer)
			}
			ip, _ := netip.AddrFromSlice(a.Answer[0].(*dns.A).A.To4())
			got = append(got, netip.AddrPortFrom(ip, srv.Port))
		}
		slices.SortFunc(got, func(a, b netip.AddrPort) int { return a.Compare(b) })
		if want := s.Records("scscf"); !slices.Equal(got, want) {
			t.Fatalf("SRV names %v, published %v", got, want)
		}
	})
}

func TestServeUDP(t *testing.T) {
	s := mustServer(t)
	if _, err := s.ListenAndServe("10.1.2.3:53"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback listen err = %v", err)
	}
	addr, err := s.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetRecords("scscf", []netip.AddrPort{ap("127.10.2.1:5060"), ap("127.10.2.2:5060")}); err != nil {
		t.Fatal(err)
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(query(s.SRVName("scscf"), dns.TypeSRV), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 2 || !r.Authoritative {
		t.Fatalf("SRV reply = %v", r)
	}
	if err := s.SetRecords("scscf", []netip.AddrPort{ap("127.10.2.1:5060")}); err != nil {
		t.Fatal(err)
	}
	r, _, err = c.Exchange(query(s.SRVName("scscf"), dns.TypeSRV), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Target != "127-10-2-1.scscf.dc0.ims.local." {
		t.Fatalf("after removal SRV reply = %v", r.Answer)
	}
}

// A pool too big for 512 bytes is truncated over UDP and whole over TCP.
func TestLargePoolTruncatesToTCP(t *testing.T) {
	s := mustServer(t)
	addr, err := s.ListenAndServe("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pool []netip.AddrPort
	for i := 1; i <= 40; i++ {
		pool = append(pool, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 10, 2, byte(i)}), 5060))
	}
	if err := s.SetRecords("scscf", pool); err != nil {
		t.Fatal(err)
	}
	q := query(s.SRVName("scscf"), dns.TypeSRV)
	udp := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := udp.Exchange(q, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) >= 40 {
		t.Fatalf("UDP reply: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	tcp := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err = tcp.Exchange(q, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 40 {
		t.Fatalf("TCP reply: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	q.SetEdns0(4096, false)
	if r, _, err = udp.Exchange(q, addr.String()); err != nil || r.Truncated || len(r.Answer) != 40 {
		t.Fatalf("EDNS0 UDP reply: %v, truncated %v", err, r != nil && r.Truncated)
	}
}

func FuzzAnswer(f *testing.F) {
	s, _ := New(Options{Zone: "dc0.ims.local"})
	_ = s.SetRecords("scscf", []netip.AddrPort{ap("127.10.2.1:5060")})
	for _, q := range []*dns.Msg{query(s.SRVName("scscf"), dns.TypeSRV), query("scscf.dc0.ims.local.", dns.TypeANY), query("x.", dns.TypeA)} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		r := s.Answer(m)
		if _, err := r.Pack(); err != nil {
			t.Fatalf("reply to %v does not pack: %v", m, err)
		}
	})
}

// BenchmarkAnswerSRV: one SRV query for a pool of 10 S-CSCFs.
func BenchmarkAnswerSRV(b *testing.B) {
	s := mustServer(b)
	var pool []netip.AddrPort
	for i := 1; i <= 10; i++ {
		pool = append(pool, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 10, 2, byte(i)}), 5060))
	}
	if err := s.SetRecords("scscf", pool); err != nil {
		b.Fatal(err)
	}
	q := query(s.SRVName("scscf"), dns.TypeSRV)
	b.ReportAllocs()
	for b.Loop() {
		if r := s.Answer(q); len(r.Answer) != 10 {
			b.Fatal(r)
		}
	}
}

// SetWeights puts each address's weight in the SRV answer (DefaultWeight
// for the others), and PickSRV chooses in proportion to the weights.
func TestSRVWeights(t *testing.T) {
	s := mustServer(t)
	a, b, c := ap("127.10.1.1:5060"), ap("127.10.1.2:5060"), ap("127.10.1.3:5060")
	if err := s.SetRecords("pcscf", []netip.AddrPort{a, b, c}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWeights("pcscf", map[netip.AddrPort]uint16{a: 300, b: 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWeights("Bad_name", nil); err == nil {
		t.Fatal("SetWeights accepted an invalid service name")
	}
	r := s.Answer(query(s.SRVName("pcscf"), dns.TypeSRV))
	got := map[uint16]uint16{} // last octet → weight
	for _, rr := range r.Answer {
		srv := rr.(*dns.SRV)
		got[map[string]uint16{"127-10-1-1": 1, "127-10-1-2": 2, "127-10-1-3": 3}[strings.Split(srv.Target, ".")[0]]] = srv.Weight
	}
	if want := map[uint16]uint16{1: 300, 2: 100, 3: DefaultWeight}; len(got) != 3 || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("weights %v, want %v", got, want)
	}
	// PickSRV: deterministic counts over every random draw
	n := map[string]int{}
	var sum uint32 = 300 + 100 + DefaultWeight
	for x := uint32(0); x < sum; x++ {
		n[PickSRV(r.Answer, func(m uint32) uint32 {
			if m != sum {
				t.Fatalf("drawn from [0,%d), want [0,%d)", m, sum)
			}
			return x
		}).Target]++
	}
	if n["127-10-1-1.pcscf.dc0.ims.local."] != 300 || n["127-10-1-2.pcscf.dc0.ims.local."] != 100 || n["127-10-1-3.pcscf.dc0.ims.local."] != DefaultWeight {
		t.Fatalf("choices %v", n)
	}
	// weight 0: never chosen while another has weight; chosen when all are 0
	zero := []dns.RR{&dns.SRV{Priority: 10, Weight: 0, Target: "z."}, &dns.SRV{Priority: 10, Weight: 5, Target: "w."}, &dns.SRV{Priority: 20, Weight: 9, Target: "low."}}
	for x := uint32(0); x < 5; x++ {
		if p := PickSRV(zero, func(uint32) uint32 { return x }); p.Target != "w." {
			t.Fatalf("draw %d chose %s", x, p.Target)
		}
	}
	if p := PickSRV(zero[:1], func(m uint32) uint32 { return 0 }); p.Target != "z." {
		t.Fatalf("all-zero priority: chose %v", p)
	}
	if PickSRV(nil, nil) != nil {
		t.Fatal("PickSRV of no record")
	}
}
