package controller

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// certValidity of the generated API certificate and CA.
const certValidity = 5 * 365 * 24 * time.Hour

// generateTLS makes a CA and a server certificate for the client Service
// and every pod name in the headless Service (the pods also present it to
// each other as a client certificate when a follower forwards a write).
// It returns the Secret data: tls.crt, tls.key and ca.crt.
func generateTLS(in *orchv1.ImsOrch, now time.Time) (map[string][]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := func() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)) }
	caSerial, err := serial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: caSerial, Subject: pkix.Name{CommonName: in.Name + " ims-orch CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvSerial, err := serial()
	if err != nil {
		return nil, err
	}
	svc := fmt.Sprintf("%s.%s.svc", in.Name, in.Namespace)
	names := []string{in.Name, svc, svc + ".cluster.local",
		fmt.Sprintf("*.%s.%s.svc", peersService(in.Name), in.Namespace),
		fmt.Sprintf("*.%s.%s.svc.cluster.local", peersService(in.Name), in.Namespace)}
	tmpl := &x509.Certificate{
		SerialNumber: srvSerial, Subject: pkix.Name{CommonName: svc}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	return map[string][]byte{
		"tls.crt": pemOf("CERTIFICATE", der),
		"tls.key": pemOf("EC PRIVATE KEY", keyDER),
		"ca.crt":  pemOf("CERTIFICATE", caDER),
	}, nil
}

// generateToken makes an admin token (key token, used by the operator and
// handed to users) and the daemon's token file holding only its hash (key
// tokens.yaml).
func generateToken() (map[string][]byte, error) {
	tok, sum, err := api.GenerateToken()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(api.TokenFile{Tokens: []api.TokenEntry{
		{Name: "ims-orch-operator", Scope: api.ScopeAdmin, SHA256: sum}}}); err != nil {
		return nil, err
	}
	return map[string][]byte{tokenKey: []byte(tok), tokensKey: buf.Bytes()}, nil
}
