package routing

import (
	"fmt"

	"github.com/ims-orch/ims-orch/placement"
)

// Tag layout in the destination port (see the package comment).
const (
	TagEntryShift = 9 // bits 15..9
	TagExitShift  = 2 // bits 8..2
	TagDCBits     = 7
	// MaxDCs is the number of datacenters the 16-bit tag can name.
	MaxDCs          = 1 << TagDCBits
	tagDCMask       = MaxDCs - 1
	tagIntervalMask = 3
)

// MaxStages is the longest chain the destination-IP encoding supports: stage
// i uses byte i and the virtual exit stage byte m+1 ≤ 4.
const MaxStages = 3

// MaxHops is the longest path (entry, stages 1..MaxStages, exit).
const MaxHops = MaxStages + 2

// Tag is what the entry datacenter writes into a new flow: its entry and exit
// datacenters and the entry's scaling interval modulo 4.
type Tag struct {
	Entry    int   `json:"entry"`
	Exit     int   `json:"exit"`
	Interval uint8 `json:"interval"` // interval index mod 4
}

// NewTag returns the tag of a flow entering at entry, leaving at exit, in
// scaling interval (the full index; only its value mod 4 is kept).
func NewTag(entry, exit int, interval uint64) Tag {
	return Tag{Entry: entry, Exit: exit, Interval: uint8(interval & tagIntervalMask)}
}

func ferr(field, format string, a ...any) error {
	return &placement.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Encode returns the destination port carrying t, or a *placement.FieldError
// when a field does not fit its bits.
func (t Tag) Encode() (uint16, error) {
	if t.Entry < 0 || t.Entry >= MaxDCs {
		return 0, ferr("tag.entry", "DC index %d is outside the tag's %d-bit range 0..%d", t.Entry, TagDCBits, MaxDCs-1)
	}
	if t.Exit < 0 || t.Exit >= MaxDCs {
		return 0, ferr("tag.exit", "DC index %d is outside the tag's %d-bit range 0..%d", t.Exit, TagDCBits, MaxDCs-1)
	}
	if t.Interval > tagIntervalMask {
		return 0, ferr("tag.interval", "%d is not an interval index mod 4 (0..3)", t.Interval)
	}
	return t.port(), nil
}

// port packs a tag whose fields are known to be in range.
func (t Tag) port() uint16 {
	return uint16(t.Entry)<<TagEntryShift | uint16(t.Exit)<<TagExitShift | uint16(t.Interval)
}

func unpackTag(port uint16) Tag {
	return Tag{
		Entry:    int(port >> TagEntryShift & tagDCMask),
		Exit:     int(port >> TagExitShift & tagDCMask),
		Interval: uint8(port & tagIntervalMask),
	}
}

// DecodeTag reads a tag from a destination port in a deployment of n
// datacenters. It fails when n is not 1..MaxDCs or when the entry or exit
// datacenter is not one of the n.
func DecodeTag(port uint16, n int) (Tag, error) {
	if n < 1 || n > MaxDCs {
		return Tag{}, ferr("datacenters", "%d datacenters, the tag supports 1..%d", n, MaxDCs)
	}
	t := unpackTag(port)
	if t.Entry >= n {
		return t, ferr("tag.entry", "DC index %d is not one of the %d datacenters (port %#04x)", t.Entry, n, port)
	}
	if t.Exit >= n {
		return t, ferr("tag.exit", "DC index %d is not one of the %d datacenters (port %#04x)", t.Exit, n, port)
	}
	return t, nil
}

// String prints the tag as entry→exit@interval.
func (t Tag) String() string { return fmt.Sprintf("%d→%d@%d", t.Entry, t.Exit, t.Interval) }

// StageShift is the bit offset of position i's routing byte (i = 1..4).
func StageShift(i int) uint { return uint(8 * (4 - i)) }

// StageMask is the paper's mask 255 << 8·(4−i) of position i (1..4).
func StageMask(i int) uint32 { return 0xff << StageShift(i) }

// StageByte returns position i's routing byte of a destination address.
func StageByte(ip IPv4, i int) uint8 { return uint8(uint32(ip) >> StageShift(i)) }

// WithStageByte returns ip with position i's routing byte set to v.
func WithStageByte(ip IPv4, i int, v uint8) IPv4 {
	return IPv4(uint32(ip)&^StageMask(i) | uint32(v)<<StageShift(i))
}

// Header is what a datacenter reads from a tagged flow arriving through a
// tunnel.
type Header struct {
	Tag Tag
	// Position is where on its path the flow is heading (1..m, or m+1 for the
	// exit): the first routing byte holding a datacenter index.
	Position int
	// DC is that byte's value, the datacenter the previous hop sent it to.
	DC int
}

// DecodeHeader reads the tag from dstPort and the routing position from
// dstIP for a deployment of n datacenters and a chain of m stages.
func DecodeHeader(dstIP IPv4, dstPort uint16, n, m int) (Header, error) {
	if m < 1 || m > MaxStages {
		return Header{}, ferr("stages", "%d stages, the destination-IP encoding supports 1..%d", m, MaxStages)
	}
	t, err := DecodeTag(dstPort, n)
	if err != nil {
		return Header{}, err
	}
	pos, dc := position(dstIP, n, m)
	if pos == 0 {
		return Header{}, ferr("dstIP", "%s holds no datacenter index (< %d) in routing bytes 1..%d", dstIP, n, m+1)
	}
	return Header{Tag: t, Position: pos, DC: dc}, nil
}

// position returns the first routing position 1..m+1 whose byte is < n and
// that byte, or 0 when there is none.
func position(ip IPv4, n, m int) (int, int) {
	for i := 1; i <= m+1; i++ {
		if b := int(StageByte(ip, i)); b < n {
			return i, b
		}
	}
	return 0, 0
}
