package api

import (
	"strings"
	"testing"
)

func TestParseTokenFile(t *testing.T) {
	admin := TokenPrefix + strings.Repeat("a", 43)
	read := TokenPrefix + strings.Repeat("r", 43)
	good := "tokens:\n  - name: ops\n    scope: admin\n    sha256: " + HashToken(admin) +
		"\n  - name: grafana\n    scope: read\n    sha256: " + strings.ToUpper(HashToken(read)) + "\n"
	s, err := ParseTokenFile([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		ok    bool
		want  Principal
	}{
		{name: "admin", token: admin, ok: true, want: Principal{Name: "ops", Scope: ScopeAdmin}},
		{name: "read (hash stored in upper case)", token: read, ok: true, want: Principal{Name: "grafana", Scope: ScopeRead}},
		{name: "unknown", token: admin + "x", ok: false},
		{name: "empty", token: "", ok: false},
		{name: "the hash itself is not a token", token: HashToken(admin), ok: false},
		{name: "too long", token: strings.Repeat("a", 600), ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := s.Authenticate(tc.token)
			if ok != tc.ok || p != tc.want {
				t.Fatalf("got %+v %v, want %+v %v", p, ok, tc.want, tc.ok)
			}
		})
	}

	bad := []struct {
		name, file, wantErr string
	}{
		{name: "empty file", file: "", wantErr: "EOF"},
		{name: "no tokens", file: "tokens: []\n", wantErr: "at least one"},
		{name: "unknown key", file: "tokens:\n  - name: a\n    scope: admin\n    hash: " + HashToken(admin) + "\n", wantErr: "hash"},
		{name: "bad scope", file: "tokens:\n  - name: a\n    scope: root\n    sha256: " + HashToken(admin) + "\n", wantErr: "tokens[0].scope"},
		{name: "short hash", file: "tokens:\n  - name: a\n    scope: admin\n    sha256: abcd\n", wantErr: "tokens[0].sha256"},
		{name: "not hex", file: "tokens:\n  - name: a\n    scope: admin\n    sha256: " + strings.Repeat("z", 64) + "\n", wantErr: "tokens[0].sha256"},
		{name: "duplicate name", file: "tokens:\n  - {name: a, scope: admin, sha256: " + HashToken(admin) + "}\n  - {name: a, scope: read, sha256: " + HashToken(read) + "}\n", wantErr: "tokens[1].name"},
		{name: "duplicate hash", file: "tokens:\n  - {name: a, scope: admin, sha256: " + HashToken(admin) + "}\n  - {name: b, scope: read, sha256: " + HashToken(admin) + "}\n", wantErr: "tokens[1].sha256"},
		{name: "not YAML", file: "tokens: [", wantErr: "token file"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokenFile([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestGenerateToken(t *testing.T) {
	tok, hash, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || HashToken(tok) != hash {
		t.Fatalf("token %q hash %q", tok, hash)
	}
	s, err := NewTokenStore([]TokenEntry{{Name: "x", Scope: ScopeAdmin, SHA256: hash}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(tok); !ok {
		t.Fatal("a generated token does not authenticate")
	}
	tok2, _, _ := GenerateToken()
	if tok2 == tok {
		t.Fatal("two generated tokens are equal")
	}
}

func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte("tokens:\n  - name: ops\n    scope: admin\n    sha256: " + HashToken(TokenPrefix+strings.Repeat("a", 43)) + "\n"))
	f.Add([]byte("tokens: [{name: a, scope: read, sha256: 00}]"))
	f.Add([]byte("- a\n- b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTokenFile(data)
		if err == nil && (s == nil || len(s.entries) == 0) {
			t.Fatal("accepted a file without tokens")
		}
	})
}
