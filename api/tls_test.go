package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

// pki is a test CA with helpers to issue leaf certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newCA(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key of a leaf for 127.0.0.1.
func (ca *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTLS runs the server's own *http.Server (HTTPServer) with cfg on
// 127.0.0.1:0 until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	s := newServer(t, apitest.Paper(now), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.HTTPServer(ln.Addr().String(), cfg)
	hs.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

func clientFor(t *testing.T, roots []byte, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, rogueCA := newCA(t, "server-ca"), newCA(t, "client-ca"), newCA(t, "rogue-ca")
	scert, skey := serverCA.issue(t, "api", x509.ExtKeyUsageServerAuth)
	ccert, ckey := clientCA.issue(t, "ops", x509.ExtKeyUsageClientAuth)
	rcert, rkey := rogueCA.issue(t, "mallory", x509.ExtKeyUsageClientAuth)
	files := api.TLSFiles{
		CertFile: write(t, dir, "server.pem", scert), KeyFile: write(t, dir, "server-key.pem", skey),
		ClientCAFile: write(t, dir, "client-ca.pem", clientCA.pem), RequireClientCert: true,
	}
	cfg, err := api.ServerTLSConfig(files)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, cfg) + "/api/v1/state"

	cases := []struct {
		name       string
		client     *http.Client
		wantStatus int // 0: the handshake must fail
	}{
		{name: "client certificate from the client CA", client: clientFor(t, serverCA.pem, ccert, ckey), wantStatus: 200},
		{name: "no client certificate", client: clientFor(t, serverCA.pem, nil, nil)},
		{name: "client certificate from another CA", client: clientFor(t, serverCA.pem, rcert, rkey)},
		{name: "client does not trust the server", client: clientFor(t, rogueCA.pem, ccert, ckey)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+readToken)
			resp, err := tc.client.Do(req)
			if tc.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestTLSOptionalClientCert(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := newCA(t, "server-ca"), newCA(t, "client-ca")
	scert, skey := serverCA.issue(t, "api", x509.ExtKeyUsageServerAuth)
	cfg, err := api.ServerTLSConfig(api.TLSFiles{CertFile: write(t, dir, "s.pem", scert), KeyFile: write(t, dir, "k.pem", skey),
		ClientCAFile: write(t, dir, "ca.pem", clientCA.pem)})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, cfg)
	resp, err := clientFor(t, serverCA.pem, nil, nil).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestServerTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	c, k := ca.issue(t, "api", x509.ExtKeyUsageServerAuth)
	cert, key := write(t, dir, "c.pem", c), write(t, dir, "k.pem", k)
	notPEM := write(t, dir, "junk.pem", []byte("not a certificate"))
	cases := []struct {
		name  string
		files api.TLSFiles
	}{
		{name: "no key", files: api.TLSFiles{CertFile: cert}},
		{name: "missing cert file", files: api.TLSFiles{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: key}},
		{name: "key does not match", files: api.TLSFiles{CertFile: cert, KeyFile: notPEM}},
		{name: "client CA not PEM", files: api.TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: notPEM}},
		{name: "require client cert without CA", files: api.TLSFiles{CertFile: cert, KeyFile: key, RequireClientCert: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.ServerTLSConfig(tc.files); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if cfg, err := api.ServerTLSConfig(api.TLSFiles{CertFile: cert, KeyFile: key}); err != nil || cfg.MinVersion < tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert {
		t.Fatalf("plain TLS config %+v, %v", cfg, err)
	}
}
