package local

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"text/template"
	"time"
)

// TemplateData is what the Kamailio template sees.
type TemplateData struct {
	ID   string
	Role Role
	// DC is the instance's datacenter. A P-CSCF puts it in the user part of
	// the Path it adds to a REGISTER, so the registrar keeps each user's
	// entry DC and the S-CSCFs count CP transactions per entry>exit DC pair.
	DC       string
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
	// Alias is the DNS name the instance also answers to ("pcscf.dc0.ims.local"):
	// an OPTIONS keep-alive to that name is for the proxy itself. Empty: none.
	Alias string
	// DialogTimeoutS is how long a dialog without an in-dialog request is kept
	// (dialog default_timeout), so a cut call does not hold an instance's
	// active dialogs up forever (DefaultDialogTimeout when zero).
	DialogTimeoutS int
	// RetryAfterS is the Retry-After of the 503 sent when no next hop could be
	// reached (1 when zero).
	RetryAfterS int
	// PoolInviteFRMS is how long a P-CSCF waits for the first answer
	// (100 Trying) of an S-CSCF to an INVITE before trying the next SRV target
	// (2000 when zero: 1 s made 503s on this machine at load average 40, where an S-CSCF sometimes needs over 1 s for its 100).
	PoolInviteFRMS int
	// SyncGraceS bounds how long after its start an S-CSCF with DMQ peers
	// answers an unknown callee with 503 + Retry-After instead of 404 (its
	// registrations may still be syncing): the window ends when the shared
	// variable synced is set to 1 over JSON-RPC (the driver does it when its
	// readiness probe sees the registrations synced: Config.MarkSynced), at
	// the latest SyncGraceS after the start (5 when zero).
	SyncGraceS int
	// CPExpireS: a CP counter (htable "cp" item) not updated for this many
	// seconds is removed, so the table holds only pairs active recently
	// (0: never; the driver's default is 300).
	CPExpireS int
	// MediaHook (issue 13), P-CSCF only: the controller's media hook on
	// loopback, "http://127.0.0.1:PORT/media/v1/dc/<dc>"; the P-CSCF posts
	// each call's media endpoints to MediaHook+"/start" at the 200 OK and
	// MediaHook+"/end" when the dialog ends, and rewrites the SDP its user
	// receives to MediaEntryIP, its DC's entry address. Empty: no hook, the
	// SDP is passed unchanged.
	MediaHook    string
	MediaEntryIP netip.Addr
}

// sipToken checks that v is usable as a SIP URI user part and as a half of
// an "entry>exit" counter key: letters, digits, '-', '.' and '_' (the API's
// datacenter names), non-empty when required.
func sipToken(field, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("render: %s: empty", field)
		}
		return nil
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("render: %s: %q: only letters, digits, '-', '.' and '_'", field, v)
		}
	}
	return nil
}

// DefaultDialogTimeout bounds a dialog's life without in-dialog requests: the
// drain bound callers use for the paper's 60 s calls (90 s), so a cut call's
// dialog never outlives a drain.
const DefaultDialogTimeout = 90 * time.Second

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
	if err := sipToken("DC", d.DC, d.Role == RolePCSCF); err != nil {
		return nil, err
	}
	for _, c := range d.Alias {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return nil, fmt.Errorf("render: Alias: %q: only letters, digits, '-' and '.'", d.Alias)
		}
	}
	if d.MediaHook != "" {
		if !strings.HasPrefix(d.MediaHook, "http://") || strings.ContainsAny(d.MediaHook, "\"\n\\ $") {
			return nil, fmt.Errorf("render: MediaHook: %q is not an http:// URL without quote, backslash, space, '$' or newline", d.MediaHook)
		}
		if !d.MediaEntryIP.Is4() {
			return nil, fmt.Errorf("render: MediaEntryIP: %v is not an IPv4 address (the media hook needs the DC's entry address)", d.MediaEntryIP)
		}
	}
	if d.DialogTimeoutS < 0 || d.RetryAfterS < 0 {
		return nil, fmt.Errorf("render: DialogTimeoutS %d, RetryAfterS %d: negative", d.DialogTimeoutS, d.RetryAfterS)
	}
	if d.DialogTimeoutS == 0 {
		d.DialogTimeoutS = int(DefaultDialogTimeout / time.Second)
	}
	if d.RetryAfterS == 0 {
		d.RetryAfterS = 1
	}
	if d.PoolInviteFRMS <= 0 {
		d.PoolInviteFRMS = 2000
	}
	if d.SyncGraceS <= 0 {
		d.SyncGraceS = 5
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
