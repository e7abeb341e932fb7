package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
	"github.com/ims-orch/ims-orch/clock"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ims-orch-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The API over TLS with bearer tokens from a token file: a read token reads,
// cannot write, and no token is refused.
func TestServeTLSAndTokens(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	adminTok, adminHash, err := api.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	readTok, readHash, err := api.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {name: admin, scope: admin, sha256: "+adminHash+"}\n  - {name: reader, scope: read, sha256: "+readHash+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.API.AllowUnauthenticated, cfg.API.TokensFile = false, tokens
	cfg.API.TLS = &TLSConfig{Cert: cert, Key: key}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	d, err := New(cfg, Options{Clock: clk, Logger: discard(), Listener: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // the initial round completes
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	})
	pool, err := api.LoadCertPool(cert)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	ctx := context.Background()
	mk := func(tok string) *client.Client {
		opts := []client.Option{client.WithTLSConfig(tc), client.WithTimeout(5 * time.Second)}
		if tok != "" {
			opts = append(opts, client.WithToken(tok))
		}
		c, err := client.New(d.URL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if d.URL()[:8] != "https://" {
		t.Fatalf("URL %s", d.URL())
	}
	if _, err := mk("").State(ctx); !client.IsStatus(err, 401) {
		t.Fatalf("no token: %v", err)
	}
	reader := mk(readTok)
	p, err := reader.Policy(ctx, PolicyName)
	if err != nil {
		t.Fatal(err)
	}
	p.DelayBoundMs = 111
	if _, err := reader.PutPolicy(ctx, p); !client.IsStatus(err, 403) {
		t.Fatalf("read token wrote: %v", err)
	}
	if res, err := mk(adminTok).PutPolicy(ctx, p); err != nil || res.Outcome != api.OutcomeUpdated {
		t.Fatalf("admin write: %+v %v", res, err)
	}
	if tr, err := d.peerTransport(); err != nil || tr == nil || len(tr.TLSClientConfig.Certificates) != 1 {
		t.Fatalf("peer transport: %v", err)
	}
}
