package ovs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// The OpenFlow 1.5 encoder of the bundle lines this package makes (Diff,
// Reset, the forgotten outputs): a FLOW_MOD per line, hand-written because
// no Go OpenFlow library is served to this project (docs/dataplane.md
// "Bundles over one OpenFlow connection"). It knows the rule shapes the
// compiler emits on a call's path and nothing more: any other field or
// action is an error (errUnsupported), never a guess, and the Switch then
// sends the whole bundle through ovs-ofctl as before. The real test
// (ofconn_real_test.go) installs every shape both ways and compares the
// switch's dump.

// errUnsupported: the encoder does not know a part of a line.
var errUnsupported = errors.New("not supported by the OpenFlow encoder")

// OpenFlow 1.5 constants used here.
const (
	ofVersion = 6 // OpenFlow 1.5

	ofptHello          = 0
	ofptError          = 1
	ofptEchoRequest    = 2
	ofptEchoReply      = 3
	ofptFlowMod        = 14
	ofptBundleControl  = 33
	ofptBundleAdd      = 34
	ofptBarrierRequest = 20
	ofptBarrierReply   = 21

	ofpfcAdd          = 0
	ofpfcModifyStrict = 2
	ofpfcDelete       = 3
	ofpfcDeleteStrict = 4

	ofpttAll    = 0xff
	ofppAny     = 0xffffffff
	ofpgAny     = 0xffffffff
	ofpNoBuffer = 0xffffffff
	ofppInPort  = 0xfff8 // OFPP_IN_PORT as nx_action_resubmit's 16-bit port

	ofpitGotoTable    = 1
	ofpitApplyActions = 4

	ofpatOutput   = 0
	ofpatSetField = 25
	ofpatVendor   = 0xffff
	nxVendorID    = 0x00002320
	nxastResubmit = 14 // NXAST_RESUBMIT_TABLE

	// bundle control types and flags
	bundleOpenRequest    = 0
	bundleOpenReply      = 1
	bundleCommitRequest  = 4
	bundleCommitReply    = 5
	bundleDiscardRequest = 6
	bundleDiscardReply   = 7
	bundleAtomic         = 1
	bundleOrdered        = 2
)

// oxmField is one match/set-field header: class, field and length.
type oxmField struct {
	class uint16
	field uint8
	size  int
}

var (
	oxmInPort  = oxmField{0x8000, 0, 4}
	oxmEthDst  = oxmField{0x8000, 3, 6}
	oxmEthType = oxmField{0x8000, 5, 2}
	oxmIPProto = oxmField{0x8000, 10, 1}
	oxmIPv4Src = oxmField{0x8000, 11, 4}
	oxmIPv4Dst = oxmField{0x8000, 12, 4}
	oxmTCPSrc  = oxmField{0x8000, 13, 2}
	oxmTCPDst  = oxmField{0x8000, 14, 2}
	oxmUDPSrc  = oxmField{0x8000, 15, 2}
	oxmUDPDst  = oxmField{0x8000, 16, 2}
)

// nxmReg is NXM_NX_REGi (Nicira extension class 1, fields 0..15).
func nxmReg(i int) oxmField { return oxmField{0x0001, uint8(i), 4} }

// putOXM appends field=v (masked when mask is not all ones for the field's
// size); v is already masked.
func putOXM(b []byte, f oxmField, v, mask []byte) []byte {
	hasMask := mask != nil && !allOnes(mask)
	n := f.size
	fb := f.field << 1
	if hasMask {
		n *= 2
		fb |= 1
	}
	b = binary.BigEndian.AppendUint16(b, f.class)
	b = append(b, fb, byte(n))
	b = append(b, v...)
	if hasMask {
		b = append(b, mask...)
	}
	return b
}

func allOnes(b []byte) bool {
	for _, x := range b {
		if x != 0xff {
			return false
		}
	}
	return true
}

// value is a field's value and mask (nil: exact) in network order.
type value struct{ v, m []byte }

func (x value) masked() []byte {
	out := make([]byte, len(x.v))
	for i := range x.v {
		out[i] = x.v[i]
		if x.m != nil {
			out[i] &= x.m[i]
		}
	}
	return out
}

// flowMod is one decoded bundle line.
type flowMod struct {
	command    uint8
	table      uint8
	priority   uint16
	cookie     uint64
	cookieMask uint64
	outPort    uint32
	match      []byte // OXM TLVs
	instrs     []byte // instructions
}

// encodeLine turns one bundle line into a FLOW_MOD body (without the
// OpenFlow header). Errors name the line's part the encoder refused.
func encodeLine(line string) (flowMod, error) {
	verb, rest, _ := strings.Cut(line, " ")
	fm := flowMod{outPort: ofppAny, priority: 0x8000}
	var withActions bool
	switch verb {
	case "add":
		fm.command, withActions = ofpfcAdd, true
	case "modify_strict":
		fm.command, withActions = ofpfcModifyStrict, true
	case "delete_strict":
		fm.command, fm.table = ofpfcDeleteStrict, ofpttAll
	case "delete":
		fm.command, fm.table = ofpfcDelete, ofpttAll
	default:
		return flowMod{}, fmt.Errorf("command %q: %w", verb, errUnsupported)
	}
	fields, acts := rest, ""
	if withActions {
		i := strings.Index(rest, "actions=")
		if i < 0 {
			return flowMod{}, fmt.Errorf("%s without actions", verb)
		}
		fields, acts = rest[:i], rest[i+len("actions="):]
	}
	var m matchSpec
	tableSet := false
	for _, kv := range strings.Split(fields, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, hasV := strings.Cut(kv, "=")
		var err error
		switch {
		case k == "table" && hasV:
			var t uint64
			t, err = parseNum(v, 8, false)
			if err == nil && t == ofpttAll {
				err = errors.New("table 255 is every table")
			}
			fm.table, tableSet = uint8(t), true
		case k == "priority" && hasV:
			var p uint64
			p, err = parseNum(v, 16, true)
			fm.priority = uint16(p)
		case k == "cookie" && hasV:
			err = parseCookie(&fm, v)
		case k == "out_port" && hasV:
			if fm.command != ofpfcDelete {
				err = errUnsupported
				break
			}
			var p uint64
			p, err = parsePort(v)
			fm.outPort = uint32(p)
		default:
			err = m.set(k, v, hasV)
		}
		if err != nil {
			return flowMod{}, fmt.Errorf("field %q: %w", kv, err)
		}
	}
	if withActions && !tableSet {
		fm.table = 0
	}
	match, err := m.encode()
	if err != nil {
		return flowMod{}, err
	}
	fm.match = match
	if withActions {
		if fm.instrs, err = encodeActions(acts); err != nil {
			return flowMod{}, fmt.Errorf("actions %q: %w", acts, err)
		}
	}
	// the FLOW_MOD inside its BUNDLE_ADD_MESSAGE (16 bytes more) must fit
	// an OpenFlow message's 16-bit length
	if n := 48 + (4+len(fm.match)+7)/8*8 + len(fm.instrs) + 16; n > 0xffff {
		return flowMod{}, fmt.Errorf("a rule of %d bytes: %w", n, errUnsupported)
	}
	return fm, nil
}

func parseCookie(fm *flowMod, v string) error {
	val, mask, masked := strings.Cut(v, "/")
	c, err := parseNum(val, 64, true)
	if err != nil {
		return err
	}
	switch {
	case masked && fm.command != ofpfcDelete:
		return fmt.Errorf("a cookie mask on %w", errUnsupported)
	case masked:
		mk, err := parseNum(mask, 64, true)
		if err != nil {
			return err
		}
		fm.cookie, fm.cookieMask = c&mk, mk
	case fm.command == ofpfcAdd:
		fm.cookie = c
	case fm.command == ofpfcModifyStrict:
		// OpenFlow 1.2+ never changes a rule's cookie on modify, and
		// ovs-ofctl sends cookie 0, mask 0 (no cookie match): the same
	default:
		return fmt.Errorf("setting a cookie on a delete: %w", errUnsupported)
	}
	return nil
}

// matchSpec gathers a rule's match fields; encode checks their
// prerequisites and writes them in a fixed order.
type matchSpec struct {
	inPort       *uint32
	regs         [8]*value
	ethType      uint16
	proto        *uint8
	src, dst     *value
	tpSrc, tpDst *value
}

func (m *matchSpec) set(k, v string, hasV bool) error {
	if !hasV {
		switch k {
		case "ip":
			return m.setProto(0x0800, nil)
		case "udp":
			p := uint8(17)
			return m.setProto(0x0800, &p)
		case "tcp":
			p := uint8(6)
			return m.setProto(0x0800, &p)
		}
		return errUnsupported
	}
	switch {
	case k == "in_port":
		if m.inPort != nil {
			return errors.New("twice")
		}
		p, err := parsePort(v)
		if err != nil {
			return err
		}
		x := uint32(p)
		m.inPort = &x
		return nil
	case len(k) == 4 && strings.HasPrefix(k, "reg") && k[3] >= '0' && k[3] <= '7':
		i := int(k[3] - '0')
		if m.regs[i] != nil {
			return errors.New("twice")
		}
		x, err := parseUint(v, 4)
		if err != nil {
			return err
		}
		m.regs[i] = &x
		return nil
	case k == "nw_proto":
		p, err := parseNum(v, 8, true)
		if err != nil {
			return err
		}
		q := uint8(p)
		return m.setProto(0, &q)
	case k == "nw_src" || k == "nw_dst" || k == "ip_src" || k == "ip_dst":
		x, err := parseIPValue(v)
		if err != nil {
			return err
		}
		at := &m.src
		if strings.HasSuffix(k, "dst") {
			at = &m.dst
		}
		if *at != nil {
			return errors.New("twice")
		}
		*at = &x
		return nil
	case k == "tp_src" || k == "tp_dst":
		x, err := parseUint(v, 2)
		if err != nil {
			return err
		}
		at := &m.tpSrc
		if k == "tp_dst" {
			at = &m.tpDst
		}
		if *at != nil {
			return errors.New("twice")
		}
		*at = &x
		return nil
	}
	return errUnsupported
}

// setProto notes ip (ethType 0x0800) and a protocol; a second, different
// one is an error.
func (m *matchSpec) setProto(ethType uint16, p *uint8) error {
	if ethType != 0 {
		if m.ethType != 0 && m.ethType != ethType {
			return errors.New("two ethernet types")
		}
		m.ethType = ethType
	}
	if p != nil {
		if m.proto != nil && *m.proto != *p {
			return errors.New("two IP protocols")
		}
		m.proto = p
	}
	return nil
}

func (m *matchSpec) encode() ([]byte, error) {
	var b []byte
	if m.inPort != nil {
		b = putOXM(b, oxmInPort, binary.BigEndian.AppendUint32(nil, *m.inPort), nil)
	}
	for i, r := range m.regs {
		if r != nil && !isZero(r.m) {
			b = putOXM(b, nxmReg(i), r.masked(), r.m)
		}
	}
	if (m.proto != nil || m.src != nil || m.dst != nil) && m.ethType != 0x0800 {
		return nil, errors.New("match: an IP field needs ip, udp or tcp")
	}
	if m.ethType != 0 {
		b = putOXM(b, oxmEthType, binary.BigEndian.AppendUint16(nil, m.ethType), nil)
	}
	if m.proto != nil {
		b = putOXM(b, oxmIPProto, []byte{*m.proto}, nil)
	}
	for _, x := range []struct {
		f oxmField
		v *value
	}{{oxmIPv4Src, m.src}, {oxmIPv4Dst, m.dst}} {
		if x.v != nil && !isZero(x.v.m) {
			b = putOXM(b, x.f, x.v.masked(), x.v.m)
		}
	}
	if m.tpSrc != nil || m.tpDst != nil {
		var fs, fd oxmField
		switch {
		case m.proto != nil && *m.proto == 17:
			fs, fd = oxmUDPSrc, oxmUDPDst
		case m.proto != nil && *m.proto == 6:
			fs, fd = oxmTCPSrc, oxmTCPDst
		default:
			return nil, errors.New("match: tp_src/tp_dst need udp or tcp")
		}
		if m.tpSrc != nil && !isZero(m.tpSrc.m) {
			b = putOXM(b, fs, m.tpSrc.masked(), m.tpSrc.m)
		}
		if m.tpDst != nil && !isZero(m.tpDst.m) {
			b = putOXM(b, fd, m.tpDst.masked(), m.tpDst.m)
		}
	}
	return b, nil
}

// isZero: a mask of all zero bits (the field is not matched); nil is an
// exact match.
func isZero(m []byte) bool {
	if m == nil {
		return false
	}
	for _, x := range m {
		if x != 0 {
			return false
		}
	}
	return true
}

// parseNum reads an unsigned number of at most bits bits the way
// ovs-ofctl reads it: decimal, or (hex) 0x hex as well; anything else
// (0b, 0o, a leading 0, _, a sign) is errUnsupported (ovs-ofctl refuses
// it or reads it otherwise: the bundle goes to ovs-ofctl).
func parseNum(s string, bits int, hex bool) (uint64, error) {
	digits, base := s, 10
	if hex && len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		digits, base = s[2:], 16
	}
	ok := digits != "" && (base == 16 || digits == "0" || digits[0] != '0')
	for i := 0; ok && i < len(digits); i++ {
		c := digits[i]
		ok = c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
	}
	if !ok {
		return 0, fmt.Errorf("number %q: %w", s, errUnsupported)
	}
	return strconv.ParseUint(digits, base, bits)
}

// parsePort reads a plain port number (decimal, as ovs-ofctl reads one);
// the reserved ports (0xff00 and up: LOCAL, IN_PORT...) are
// errUnsupported (ovs-ofctl maps them; the connection would send them
// raw).
func parsePort(s string) (uint64, error) {
	p, err := parseNum(s, 16, false)
	if err == nil && p >= 0xff00 {
		err = fmt.Errorf("reserved port %d: %w", p, errUnsupported)
	}
	return p, err
}

// parseUint reads "v" or "v/mask" (decimal or 0x hex) of size bytes.
func parseUint(s string, size int) (value, error) {
	val, mask, masked := strings.Cut(s, "/")
	v, err := parseNum(val, size*8, true)
	if err != nil {
		return value{}, err
	}
	x := value{v: bigEndian(v, size)}
	if masked {
		m, err := parseNum(mask, size*8, true)
		if err != nil {
			return value{}, err
		}
		x.m = bigEndian(m, size)
	}
	return x, nil
}

// bigEndian is v's low size bytes in network order.
func bigEndian(v uint64, size int) []byte {
	return binary.BigEndian.AppendUint64(nil, v)[8-size:]
}

// parseIPValue reads "a.b.c.d", "a.b.c.d/e.f.g.h" or "a.b.c.d/len".
func parseIPValue(s string) (value, error) {
	addr, mask, masked := strings.Cut(s, "/")
	ip, err := parseIP(addr)
	if err != nil {
		return value{}, err
	}
	x := value{v: bigEndian(uint64(ip), 4)}
	if !masked {
		return x, nil
	}
	if strings.Contains(mask, ".") {
		m, err := parseIP(mask)
		if err != nil {
			return value{}, err
		}
		x.m = bigEndian(uint64(m), 4)
		return x, nil
	}
	n, err := strconv.Atoi(mask)
	if err != nil || n < 0 || n > 32 {
		return value{}, fmt.Errorf("prefix length %q", mask)
	}
	x.m = bigEndian(uint64(^uint32(0)<<(32-n)), 4) // /0: a shift by 32 gives the all-zero mask
	return x, nil
}

// encodeActions returns the instructions of an action list: its actions
// in one APPLY_ACTIONS, then a GOTO_TABLE if the list ends with goto_table.
// "drop" alone is no instruction.
func encodeActions(s string) ([]byte, error) {
	if s == "drop" {
		return nil, nil
	}
	var acts []byte
	gotoTable := -1
	for _, a := range splitActions(s) {
		if gotoTable >= 0 {
			return nil, errors.New("goto_table must be the last action")
		}
		var err error
		switch {
		case strings.HasPrefix(a, "goto_table:"):
			var t uint64
			t, err = parseNum(a[len("goto_table:"):], 8, false)
			if err == nil && t >= ofpttAll {
				err = errors.New("table out of range")
			}
			gotoTable = int(t)
		case strings.HasPrefix(a, "output:"):
			var p uint64
			p, err = parsePort(a[len("output:"):])
			if err == nil && p == 0 {
				err = fmt.Errorf("port 0: %w", errUnsupported)
			}
			if err != nil {
				break
			}
			acts = binary.BigEndian.AppendUint16(acts, ofpatOutput)
			acts = binary.BigEndian.AppendUint16(acts, 16)
			acts = binary.BigEndian.AppendUint32(acts, uint32(p))
			acts = append(acts, 0, 0, 0, 0, 0, 0, 0, 0) // max_len 0, pad
		case strings.HasPrefix(a, "resubmit(,") && strings.HasSuffix(a, ")"):
			var t uint64
			t, err = parseNum(a[len("resubmit(,"):len(a)-1], 8, false)
			if err == nil && t >= ofpttAll {
				err = errors.New("table out of range")
			}
			acts = binary.BigEndian.AppendUint16(acts, ofpatVendor)
			acts = binary.BigEndian.AppendUint16(acts, 16)
			acts = binary.BigEndian.AppendUint32(acts, nxVendorID)
			acts = binary.BigEndian.AppendUint16(acts, nxastResubmit)
			acts = binary.BigEndian.AppendUint16(acts, ofppInPort)
			acts = append(acts, byte(t), 0, 0, 0)
		case strings.HasPrefix(a, "set_field:"):
			acts, err = appendSetField(acts, a[len("set_field:"):])
		default:
			err = errUnsupported
		}
		if err != nil {
			return nil, fmt.Errorf("action %q: %w", a, err)
		}
	}
	var b []byte
	if len(acts) > 0 {
		b = binary.BigEndian.AppendUint16(b, ofpitApplyActions)
		b = binary.BigEndian.AppendUint16(b, uint16(8+len(acts)))
		b = append(b, 0, 0, 0, 0)
		b = append(b, acts...)
	}
	if gotoTable >= 0 {
		b = binary.BigEndian.AppendUint16(b, ofpitGotoTable)
		b = binary.BigEndian.AppendUint16(b, 8)
		b = append(b, byte(gotoTable), 0, 0, 0)
	}
	if len(b) == 0 {
		return nil, errors.New("no action")
	}
	return b, nil
}

// appendSetField appends OFPAT_SET_FIELD for "value[/mask]->field"
// (OpenFlow 1.5 sets masked fields itself).
func appendSetField(b []byte, s string) ([]byte, error) {
	val, field, ok := strings.Cut(s, "->")
	if !ok {
		return nil, errors.New("no ->")
	}
	var f oxmField
	var x value
	var err error
	switch {
	case len(field) == 4 && strings.HasPrefix(field, "reg") && field[3] >= '0' && field[3] <= '7':
		f = nxmReg(int(field[3] - '0'))
		x, err = parseUint(val, 4)
	case field == "ip_src" || field == "nw_src" || field == "ip_dst" || field == "nw_dst":
		f = oxmIPv4Src
		if strings.HasSuffix(field, "dst") {
			f = oxmIPv4Dst
		}
		x, err = parseIPValue(val)
	case field == "udp_src" || field == "udp_dst" || field == "tcp_src" || field == "tcp_dst":
		f = map[string]oxmField{"udp_src": oxmUDPSrc, "udp_dst": oxmUDPDst, "tcp_src": oxmTCPSrc, "tcp_dst": oxmTCPDst}[field]
		x, err = parseUint(val, 2)
	case field == "eth_dst":
		f = oxmEthDst
		if strings.Contains(val, "/") {
			return nil, fmt.Errorf("a masked eth_dst: %w", errUnsupported)
		}
		var mac net.HardwareAddr
		mac, err = net.ParseMAC(val)
		if err == nil && len(mac) != 6 {
			err = errors.New("not a 6-byte MAC")
		}
		x = value{v: mac}
	default:
		return nil, fmt.Errorf("field %q: %w", field, errUnsupported)
	}
	if err != nil {
		return nil, err
	}
	// a zero mask sets nothing (ovs-ofctl: set_field:ANY->field); it is
	// sent as it is, as ovs-ofctl sends it. Value bits outside the mask
	// are not masked away: ovs-vswitchd refuses such a set_field (BAD_
	// WILDCARDS), so the bundle goes to ovs-ofctl and is refused there.
	for i := range x.m {
		if x.v[i]&^x.m[i] != 0 {
			return nil, fmt.Errorf("value bits outside the mask: %w", errUnsupported)
		}
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, ofpatSetField)
	b = append(b, 0, 0) // length, below
	b = putOXM(b, f, x.masked(), x.m)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// marshal returns the FLOW_MOD message with transaction id xid.
func (fm flowMod) marshal(xid uint32) []byte {
	return fm.appendTo(make([]byte, 0, 64+len(fm.match)+len(fm.instrs)), xid)
}

// appendTo appends the FLOW_MOD message with transaction id xid to b.
func (fm flowMod) appendTo(b []byte, xid uint32) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // header, below
	b = binary.BigEndian.AppendUint64(b, fm.cookie)
	b = binary.BigEndian.AppendUint64(b, fm.cookieMask)
	b = append(b, fm.table, fm.command)
	b = binary.BigEndian.AppendUint16(b, 0) // idle timeout
	b = binary.BigEndian.AppendUint16(b, 0) // hard timeout
	b = binary.BigEndian.AppendUint16(b, fm.priority)
	b = binary.BigEndian.AppendUint32(b, ofpNoBuffer)
	b = binary.BigEndian.AppendUint32(b, fm.outPort)
	b = binary.BigEndian.AppendUint32(b, ofpgAny)
	b = binary.BigEndian.AppendUint16(b, 0) // flags
	b = binary.BigEndian.AppendUint16(b, 0) // importance
	// ofp_match: type OXM, length without padding, fields, padding to 8
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(fm.match)))
	b = append(b, fm.match...)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	b = append(b, fm.instrs...)
	putHeader(b[start:], ofptFlowMod, xid)
	return b
}

// putHeader writes the OpenFlow header into b[:8] (b is the whole message).
func putHeader(b []byte, typ uint8, xid uint32) {
	b[0], b[1] = ofVersion, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
}

// message returns a message of type typ with body.
func message(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, 8, 8+len(body))
	b = append(b, body...)
	putHeader(b, typ, xid)
	return b
}

// encodeBundle encodes every line of a bundle, or fails on the first the
// encoder does not take (the whole bundle then goes through ovs-ofctl).
func encodeBundle(lines []string) ([]flowMod, error) {
	out := make([]flowMod, 0, len(lines))
	for _, l := range lines {
		fm, err := encodeLine(l)
		if err != nil {
			return nil, fmt.Errorf("bundle line %q: %w", l, err)
		}
		out = append(out, fm)
	}
	return out, nil
}

// bundleControl is a BUNDLE_CONTROL message of bundle id.
func bundleControl(id uint32, typ uint16, xid uint32) []byte {
	body := binary.BigEndian.AppendUint32(nil, id)
	body = binary.BigEndian.AppendUint16(body, typ)
	body = binary.BigEndian.AppendUint16(body, bundleAtomic|bundleOrdered)
	return message(ofptBundleControl, xid, body)
}

// bundleMessages returns a bundle's open (xid first) and one add message
// per flow mod (xids first+1...), then a barrier (the next xid): its
// reply comes after every add message's error (ovs-vswitchd checks a
// flow mod when it is added and leaves a refused one out of the bundle,
// which would still commit: the commit is only sent once none was
// refused).
func bundleMessages(id, first uint32, fms []flowMod) []byte {
	out := bundleControl(id, bundleOpenRequest, first)
	for i, fm := range fms {
		// each add message is written in place: header, bundle id, pad,
		// flags, then its flow mod
		xid := first + 1 + uint32(i)
		start := len(out)
		out = append(out, 0, 0, 0, 0, 0, 0, 0, 0) // header, below
		out = binary.BigEndian.AppendUint32(out, id)
		out = binary.BigEndian.AppendUint16(out, 0) // pad
		out = binary.BigEndian.AppendUint16(out, bundleAtomic|bundleOrdered)
		out = fm.appendTo(out, xid)
		putHeader(out[start:], ofptBundleAdd, xid)
	}
	return append(out, message(ofptBarrierRequest, first+1+uint32(len(fms)), nil)...)
}

// Encodes returns nil when f's add, modify and delete go over the
// OpenFlow connection (the encoder takes them), else why not: a bundle
// with such a rule goes through ovs-ofctl.
func Encodes(f Flow) error {
	_, err := encodeBundle([]string{"add " + f.String(), "modify_strict " + f.String(), "delete_strict " + f.Key()})
	return err
}
