package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scopes of a token. A read token may call every GET; an admin token may also
// write (PUT, POST, DELETE).
const (
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// TokenPrefix starts every token GenerateToken makes, so that a leaked token
// is easy to recognise in logs and secret scanners.
const TokenPrefix = "imso_"

// minTokenLen refuses short bearer strings before hashing them: a generated
// token is TokenPrefix + 43 base64url characters (256 bits).
const minTokenLen = 32

// TokenEntry is one line of the token file. SHA256 is the lower-case hex
// SHA-256 of the token; the token itself is never stored.
type TokenEntry struct {
	Name   string `yaml:"name"`
	Scope  string `yaml:"scope"`
	SHA256 string `yaml:"sha256"`
}

// TokenFile is the token file:
//
//	tokens:
//	  - name: ops-admin          # who holds it (shown in logs)
//	    scope: admin             # admin | read
//	    sha256: 9f86d081884c...  # hex SHA-256 of the token (64 characters)
//	  - name: grafana
//	    scope: read
//	    sha256: 60303ae22b99...
type TokenFile struct {
	Tokens []TokenEntry `yaml:"tokens"`
}

// TokenStore checks bearer tokens against their SHA-256 hashes.
type TokenStore struct {
	entries []storedToken
}

type storedToken struct {
	principal *Principal // shared by every request with this token (read only)
	hash      [sha256.Size]byte
}

// GenerateToken returns a new high-entropy token (256 random bits) and the
// hex SHA-256 to put in the token file.
func GenerateToken() (token, sha256Hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the hex SHA-256 of a token, as stored in the token file.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewTokenStore checks the entries (names unique and valid, scope read or
// admin, sha256 64 hex characters, no hash twice) and builds a store.
func NewTokenStore(entries []TokenEntry) (*TokenStore, error) {
	v := &ValidationError{}
	s := &TokenStore{}
	names := map[string]bool{}
	hashes := map[string]bool{}
	for i, e := range entries {
		f := fmt.Sprintf("tokens[%d]", i)
		checkName(v, f+".name", e.Name)
		if names[e.Name] {
			v.Add(f+".name", "%q appears twice", e.Name)
		}
		names[e.Name] = true
		if e.Scope != ScopeRead && e.Scope != ScopeAdmin {
			v.Add(f+".scope", "%q must be %q or %q", e.Scope, ScopeRead, ScopeAdmin)
		}
		raw, err := hex.DecodeString(strings.ToLower(e.SHA256))
		if err != nil || len(raw) != sha256.Size {
			v.Add(f+".sha256", "must be the 64 hex characters of a SHA-256 hash")
			continue
		}
		if hashes[string(raw)] {
			v.Add(f+".sha256", "the same token hash appears twice")
		}
		hashes[string(raw)] = true
		st := storedToken{principal: &Principal{Name: e.Name, Scope: e.Scope}}
		copy(st.hash[:], raw)
		s.entries = append(s.entries, st)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseTokenFile parses a token file (see TokenFile). Unknown keys are
// refused so that a typo (e.g. "hash:") does not silently drop a token.
func ParseTokenFile(data []byte) (*TokenStore, error) {
	var tf TokenFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if len(tf.Tokens) == 0 {
		return nil, fmt.Errorf("token file: tokens: at least one token is required")
	}
	s, err := NewTokenStore(tf.Tokens)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return s, nil
}

// LoadTokenFile reads and parses a token file. The file should be readable
// by the daemon only; it holds hashes, not tokens, but a hash list still
// tells who may call the API.
func LoadTokenFile(path string) (*TokenStore, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTokenFile(data)
}

// Principal is the caller a valid token identifies.
type Principal struct {
	Name  string
	Scope string
}

// Authenticate returns the principal of a bearer token. Every stored hash is
// compared in constant time, and all of them are always compared, so the
// answer time does not tell which hash nearly matched.
func (s *TokenStore) Authenticate(token string) (Principal, bool) {
	p := s.authenticate(token)
	if p == nil {
		return Principal{}, false
	}
	return *p, true
}

// maxTokenLen refuses longer bearer strings before hashing them.
const maxTokenLen = 512

// authenticate is Authenticate without copies: the stored principal, nil
// when the token is unknown. The token is hashed from a stack buffer, so a
// request's authentication allocates nothing.
func (s *TokenStore) authenticate(token string) *Principal {
	if s == nil || len(token) < minTokenLen || len(token) > maxTokenLen {
		return nil
	}
	var buf [maxTokenLen]byte
	h := sha256.Sum256(buf[:copy(buf[:], token)])
	var found *Principal
	for i := range s.entries {
		if subtle.ConstantTimeCompare(h[:], s.entries[i].hash[:]) == 1 {
			found = s.entries[i].principal
		}
	}
	return found
}

type principalKey struct{}

// PrincipalFrom returns the authenticated caller of a request, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	if !ok || p == nil {
		return Principal{}, false
	}
	return *p, true
}

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// authMiddleware refuses a request without a valid token (401) and a write
// with a read token (403). With a nil store and allowAnon, every request
// passes (development only).
func authMiddleware(store *TokenStore, allowAnon bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if store == nil && allowAnon {
				next.ServeHTTP(w, r)
				return
			}
			tok, ok := bearer(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ims-orch"`)
				writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
					Detail: "an Authorization: Bearer <token> header is required", Field: "Authorization"})
				return
			}
			p := store.authenticate(tok)
			if p == nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ims-orch", error="invalid_token"`)
				writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
					Detail: "the bearer token is not valid", Field: "Authorization"})
				return
			}
			if isWrite(r.Method) && p.Scope != ScopeAdmin {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ims-orch", error="insufficient_scope", scope="admin"`)
				writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden,
					Detail: fmt.Sprintf("token %q has scope %q; %s needs scope %q", p.Name, p.Scope, r.Method, ScopeAdmin)})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}
