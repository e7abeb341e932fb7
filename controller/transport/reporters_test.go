package transport

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"
)

func hashOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// With per-node credentials a reporter's token is accepted only for its own
// DCs (403 otherwise), and the shared protocol token no longer is.
func TestWorkloadReportersPerDC(t *testing.T) {
	const tokA, tokB = "reporter-a-token-0123456789", "reporter-b-token-0123456789"
	creds, err := ParseReporterCreds([]byte("reporters:\n  - {name: node1, dcs: [tokyo], sha256: " + hashOf(tokA) + "}\n" +
		"  - {name: node2, dcs: [london, houston], sha256: " + hashOf(tokB) + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := &intakeRec{known: map[string]bool{"tokyo": true, "london": true, "houston": true}}
	h, err := NewWorkloadHandler(in, wtoken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.WithReporters(creds))
	defer srv.Close()
	expectAnswer(t, srv, "POST", WorkloadPath, tokA, body(t, wrep("tokyo", 1, 10)), 200, `"accepted":true`)
	expectAnswer(t, srv, "POST", WorkloadPath, tokB, body(t, wrep("tokyo", 2, 1e3)), 403, `reporter \"node2\" may report only for london, houston`)
	expectAnswer(t, srv, "POST", WorkloadPath, tokB, body(t, wrep("houston", 2, 10)), 200, `"accepted":true`)
	expectAnswer(t, srv, "POST", WorkloadPath, wtoken, body(t, wrep("tokyo", 3, 10)), 401, "bearer token")
	// a reporter is its credential's name, whatever its report claims
	// (revB #6: node2 could report as node1, or as made-up IDs)
	expectAnswer(t, srv, "POST", WorkloadPath, tokB, body(t, withReporter(wrep("houston", 3, 10), "node1")), 200, `"accepted":true`)
	expectAnswer(t, srv, "POST", WorkloadPath, tokB, body(t, withReporter(wrep("houston", 3, 10), "made-up")), 200, `"accepted":true`)
	// (so the engine takes the last for a copy of the one before: the same
	// credential, reporter, DC, kind and time)
	if got := in.reports(); len(got) != 4 || got[0].DC != "tokyo" || got[1].DC != "houston" ||
		got[0].Reporter != "node1" || got[1].Reporter != "node2" || got[2].Reporter != "node2" || got[3].Reporter != "node2" {
		t.Fatalf("intake got %+v", got)
	}
	// the intake bounds reporters per credential: the credential's name
	for i, want := range []string{"node1", "node2", "node2", "node2"} {
		if c := in.reports()[i].Credential; c != want {
			t.Errorf("report %d: credential %q, want %q", i, c, want)
		}
	}
	for _, bad := range []struct{ doc, want string }{
		{"reporters: []", "at least one"},
		{"reporters:\n  - {name: a, dcs: [x], sha256: zz}", "reporters[0].sha256"},
		{"reporters:\n  - {name: a, sha256: " + hashOf("x") + "}", "reporters[0].dcs"},
		{"reporters:\n  - {name: a, dcs: [x], sha256: " + hashOf("x") + "}\n  - {name: b, dcs: [y], sha256: " + hashOf("x") + "}", "reporters[1].sha256: the same token"},
		{"reporters:\n  - {name: a, dcs: [x], sha256: " + hashOf("x") + ", extra: 1}", "extra"},
		{"reporters:\n  - {name: shared protocol token, dcs: [x], sha256: " + hashOf("x") + "}", "reporters[0].name: \"shared protocol token\": byte 6 is a space"},
	} {
		if _, err := ParseReporterCreds([]byte(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.doc, err, bad.want)
		}
	}
}

func FuzzParseReporterCreds(f *testing.F) {
	f.Add([]byte("reporters:\n  - {name: node1, dcs: [tokyo], sha256: " + hashOf("t") + "}\n"))
	f.Add([]byte("reporters: []"))
	f.Add([]byte("reporters:\n  - {name: \"node 1\", dcs: [tokyo], sha256: " + hashOf("t") + "}\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseReporterCreds(b)
		if err == nil && len(c.by) == 0 {
			t.Fatal("accepted a file without reporters")
		}
	})
}
