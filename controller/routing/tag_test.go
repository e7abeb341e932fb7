package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
	"pgregory.net/rapid"
)

func TestTagEncodeLayout(t *testing.T) {
	tests := []struct {
		name string
		tag  Tag
		port uint16
	}{
		{"zero", Tag{0, 0, 0}, 0},
		{"interval only", Tag{0, 0, 3}, 0b11},
		{"exit only", Tag{0, 1, 0}, 1 << 2},
		{"entry only", Tag{1, 0, 0}, 1 << 9},
		{"paper 0→1 interval 2", Tag{0, 1, 2}, 0b0000000_0000001_10},
		{"max", Tag{127, 127, 3}, 0xffff},
		{"mixed", Tag{5, 100, 1}, 5<<9 | 100<<2 | 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.tag.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.port {
				t.Fatalf("Encode(%v) = %#04x, want %#04x", tc.tag, got, tc.port)
			}
			back, err := DecodeTag(got, MaxDCs)
			if err != nil || back != tc.tag {
				t.Fatalf("DecodeTag(%#04x) = %v, %v; want %v", got, back, err, tc.tag)
			}
		})
	}
}

func TestNewTagKeepsIntervalMod4(t *testing.T) {
	for iv, want := range map[uint64]uint8{0: 0, 1: 1, 4: 0, 7: 3, 1<<63 + 2: 2} {
		if got := NewTag(1, 2, iv).Interval; got != want {
			t.Errorf("NewTag(.., %d).Interval = %d, want %d", iv, got, want)
		}
	}
}

func TestTagErrors(t *testing.T) {
	enc := []struct {
		name  string
		tag   Tag
		field string
	}{
		{"entry negative", Tag{-1, 0, 0}, "tag.entry"},
		{"entry too big", Tag{128, 0, 0}, "tag.entry"},
		{"exit too big", Tag{0, 200, 0}, "tag.exit"},
		{"exit negative", Tag{0, -3, 0}, "tag.exit"},
		{"interval not mod 4", Tag{0, 0, 4}, "tag.interval"},
	}
	for _, tc := range enc {
		t.Run("encode "+tc.name, func(t *testing.T) {
			_, err := tc.tag.Encode()
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Encode(%v) error = %v, want a FieldError on %s", tc.tag, err, tc.field)
			}
		})
	}
	dec := []struct {
		name  string
		port  uint16
		n     int
		field string
	}{
		{"no datacenters", 0, 0, "datacenters"},
		{"too many datacenters", 0, 129, "datacenters"},
		{"entry beyond n", 3 << 9, 3, "tag.entry"},
		{"exit beyond n", 5 << 2, 4, "tag.exit"},
	}
	for _, tc := range dec {
		t.Run("decode "+tc.name, func(t *testing.T) {
			_, err := DecodeTag(tc.port, tc.n)
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("DecodeTag(%#04x, %d) error = %v, want a FieldError on %s", tc.port, tc.n, err, tc.field)
			}
		})
	}
}

func TestTagRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, MaxDCs).Draw(t, "n")
		tag := Tag{
			Entry:    rapid.IntRange(0, n-1).Draw(t, "entry"),
			Exit:     rapid.IntRange(0, n-1).Draw(t, "exit"),
			Interval: uint8(rapid.IntRange(0, 3).Draw(t, "interval")),
		}
		port, err := tag.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTag(port, n)
		if err != nil || back != tag {
			t.Fatalf("round trip %v → %#04x → %v, %v", tag, port, back, err)
		}
		// Every port decodes; re-encoding gives the same port.
		raw := rapid.Uint16().Draw(t, "port")
		if got, _ := unpackTag(raw).Encode(); got != raw {
			t.Fatalf("port %#04x → %v → %#04x", raw, unpackTag(raw), got)
		}
	})
}

func TestStageMasksArePapers(t *testing.T) {
	want := []uint32{0xff000000, 0x00ff0000, 0x0000ff00, 0x000000ff}
	for i := 1; i <= 4; i++ {
		if got := StageMask(i); got != want[i-1] || got != uint32(255)<<(8*(4-i)) {
			t.Errorf("StageMask(%d) = %#08x, want %#08x", i, got, want[i-1])
		}
	}
	a := ip(t, "1.2.3.4")
	for i := 1; i <= 4; i++ {
		if got := StageByte(a, i); got != uint8(i) {
			t.Errorf("StageByte(1.2.3.4, %d) = %d", i, got)
		}
	}
	if got := WithStageByte(a, 2, 99); got.String() != "1.99.3.4" {
		t.Errorf("WithStageByte = %s", got)
	}
}

func TestDecodeHeader(t *testing.T) {
	port, _ := Tag{2, 1, 3}.Encode()
	tests := []struct {
		name    string
		ip      string
		port    uint16
		n, m    int
		wantPos int
		wantDC  int
		errPart string
	}{
		{"heading to stage 1", "2.200.200.200", port, 3, 3, 1, 2, ""},
		{"heading to stage 3", "30.40.1.9", port, 3, 3, 3, 1, ""},
		{"heading to exit m=3", "30.40.50.1", port, 3, 3, 4, 1, ""},
		{"heading to exit m=2", "30.40.0.250", port, 3, 2, 3, 0, ""},
		{"m=1 ignores byte 3", "30.40.0.0", port, 3, 1, 0, 0, "holds no datacenter index"},
		{"no DC byte", "30.40.50.60", port, 3, 3, 0, 0, "holds no datacenter index"},
		{"too many stages", "0.0.0.0", port, 3, 4, 0, 0, "stages"},
		{"zero stages", "0.0.0.0", port, 3, 0, 0, 0, "stages"},
		{"tag names unknown DC", "0.0.0.0", port, 2, 3, 0, 0, "tag.entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := DecodeHeader(ip(t, tc.ip), tc.port, tc.n, tc.m)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("error = %v, want one containing %q", err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Position != tc.wantPos || h.DC != tc.wantDC || h.Tag != (Tag{2, 1, 3}) {
				t.Fatalf("header = %+v, want position %d dc %d", h, tc.wantPos, tc.wantDC)
			}
		})
	}
}

func TestParseIPv4(t *testing.T) {
	a, err := ParseIPv4("10.1.2.3")
	if err != nil || uint32(a) != 0x0a010203 || a.String() != "10.1.2.3" {
		t.Fatalf("ParseIPv4 = %#x, %v", uint32(a), err)
	}
	if b, err := ParseIPv4("::ffff:10.1.2.3"); err != nil || b != a {
		t.Fatalf("mapped: %v %v", b, err)
	}
	for _, bad := range []string{"", "10.1.2", "2001:db8::1", "x"} {
		if _, err := ParseIPv4(bad); err == nil {
			t.Errorf("ParseIPv4(%q) accepted", bad)
		}
	}
}
