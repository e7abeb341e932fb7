package local

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"text/template"
)

// TemplateData is what the Kamailio template sees.
type TemplateData struct {
	ID       string
	Role     Role
	Addr     netip.Addr
	Children int
	CtlSock  string // "udp:ADDR:2049"
	RPCSock  string // "udp:ADDR:8090"
	// NextHop is the P-CSCF's S-CSCF pool: "sip:scscf.dc0.ims.local" (DNS SRV)
	// or a fixed "sip:IP:PORT".
	NextHop string
	// DNSMaxTTL caps Kamailio's DNS cache entries, in seconds.
	DNSMaxTTL int
	// FRTimerMS is tm's final-response timer: after it a request moves to the
	// next SRV target.
	FRTimerMS int
	// DMQPeers are the other live S-CSCFs of the DC when this one starts: its
	// DMQ notification peers, from which it learns the node list and pulls the
	// replicated usrloc. Empty: it is the first (no notification peer).
	DMQPeers []netip.Addr
	// CPExpireS: a CP counter (htable "cp" item) not updated for this many
	// seconds is removed, so the table holds only pairs active recently
	// (0: never; the driver's default is 300).
	CPExpireS int
}

// Render renders the Kamailio config template tmpl from fsys with d.
func Render(fsys fs.FS, tmpl string, d TemplateData) ([]byte, error) {
	if d.Role.code() == 0 {
		return nil, fmt.Errorf("render: Role: %q unknown", d.Role)
	}
	if d.Role == RolePCSCF && !strings.HasPrefix(d.NextHop, "sip:") {
		return nil, fmt.Errorf("render: NextHop: %q is not a sip: URI", d.NextHop)
	}
	if strings.ContainsAny(d.NextHop, "\"\n\\") {
		return nil, fmt.Errorf("render: NextHop: %q holds quote, backslash or newline", d.NextHop)
	}
	t, err := template.New(tmpl).Option("missingkey=error").ParseFS(fsys, tmpl)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return b.Bytes(), nil
}
