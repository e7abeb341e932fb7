package controller

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// Validity of the generated certificates. The API certificate never
// outlives the CA that signs it.
const (
	caValidity   = 5 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

// Keys of the generated Secrets: the API TLS Secret (mounted in the pods)
// holds the certificate, its key and the trusted CA bundle; the CA Secret
// (never mounted) holds the signing CA and its key.
const (
	certKey   = "tls.crt"
	keyKey    = "tls.key"
	bundleKey = "ca.crt"
)

// certMaterial is the generated TLS state: the signing CA (nil when its key
// is not known: made by an operator that did not keep it), the trusted CA
// bundle and the API certificate with its key.
type certMaterial struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	caPEM   []byte
	caKeyPM []byte
	bundle  []*x509.Certificate
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// rotation is what rotateCerts decided.
type rotation struct {
	// caData and tlsData are the Secrets' new data, nil when unchanged.
	caData, tlsData map[string][]byte
	// did says what changed ("" nothing); wait why a due step waits.
	did, wait string
	// renewAt is when the next step falls due (the earliest of the CA's
	// and the certificate's NotAfter - renewBefore).
	renewAt time.Time
	// caNotAfter and certNotAfter of the resulting material.
	caNotAfter, certNotAfter time.Time
}

// rotateCerts decides the next step of the generated CA and API
// certificate at now. tlsData nil: nothing exists yet, a CA and a
// certificate are made at once. Otherwise at most one step, so that every
// pod keeps trusting every peer's certificate through the rolling updates:
//
//  1. the CA is due (or unknown while the certificate is due): a new CA is
//     made and added to the bundle beside the CA that signed the
//     certificate in use; the certificate stays. The pods roll to the new
//     bundle.
//  2. the certificate is not signed by the CA: once podsTrustCA (every pod
//     runs with the bundle that holds the CA and is ready) it is replaced by
//     one the CA signs. Pods that still present the old one are trusted by
//     the old CA in the bundle.
//  3. the certificate is due: a new one from the same CA.
//
// The CA that signed the certificate before 1 leaves the bundle at the next
// CA rotation (by then it has expired).
func rotateCerts(in *orchv1.ImsOrch, caData, tlsData map[string][]byte, now time.Time, renewBefore time.Duration,
	podsTrustCA bool) (rotation, error) {
	due := func(c *x509.Certificate) bool { return !now.Before(c.NotAfter.Add(-renewBefore)) }
	if tlsData == nil {
		m, err := newCA(in, now)
		if err != nil {
			return rotation{}, err
		}
		if err := m.issue(in, now); err != nil {
			return rotation{}, err
		}
		m.bundle = []*x509.Certificate{m.ca}
		return m.result(renewBefore, "generated a CA and the API certificate", ""), nil
	}
	m, err := parseCertMaterial(caData, tlsData)
	if err != nil {
		return rotation{}, err
	}
	if m.ca == nil || due(m.ca) {
		if m.ca == nil && !due(m.cert) {
			return m.unchanged(renewBefore, ""), nil
		}
		nm, err := newCA(in, now)
		if err != nil {
			return rotation{}, err
		}
		nm.bundle = []*x509.Certificate{nm.ca}
		for _, b := range m.bundle {
			if m.cert.CheckSignatureFrom(b) == nil && now.Before(b.NotAfter) {
				nm.bundle = append(nm.bundle, b)
			}
		}
		nm.cert, nm.certPEM, nm.keyPEM = m.cert, m.certPEM, m.keyPEM
		if len(nm.bundle) == 1 || !now.Before(m.cert.NotAfter) {
			// the certificate or its CA expired: the pods refuse each
			// other already, replacing everything at once cuts no one off
			nm.bundle = nm.bundle[:1]
			if err := nm.issue(in, now); err != nil {
				return rotation{}, err
			}
			return nm.result(renewBefore, "the API certificate or its CA expired: generated a new CA and certificate", ""), nil
		}
		return nm.result(renewBefore, "generated a new CA and added it to the trusted bundle", ""), nil
	}
	if !m.trusts(m.ca) {
		// the CA Secret names a CA the pods do not trust (the bundle was
		// edited): trust it first, as after step 1
		m.bundle = append([]*x509.Certificate{m.ca}, m.bundle...)
		return m.result(renewBefore, "added the CA to the trusted bundle", ""), nil
	}
	signed := m.cert.CheckSignatureFrom(m.ca) == nil
	if signed && !due(m.cert) {
		return m.unchanged(renewBefore, ""), nil
	}
	if !signed && !podsTrustCA && now.Before(m.cert.NotAfter) {
		return m.unchanged(renewBefore, "waiting for every pod to run with the new CA in its bundle before the API certificate it signs replaces the old one"), nil
	}
	if err := m.issue(in, now); err != nil {
		return rotation{}, err
	}
	if signed {
		return m.result(renewBefore, "renewed the API certificate", ""), nil
	}
	return m.result(renewBefore, "replaced the API certificate by one the new CA signs", ""), nil
}

// trusts reports whether the bundle holds ca.
func (m *certMaterial) trusts(ca *x509.Certificate) bool {
	for _, b := range m.bundle {
		if b.Equal(ca) {
			return true
		}
	}
	return false
}

func (m *certMaterial) renewAt(renewBefore time.Duration) time.Time {
	at := m.cert.NotAfter.Add(-renewBefore)
	if m.ca != nil && m.ca.NotAfter.Add(-renewBefore).Before(at) {
		at = m.ca.NotAfter.Add(-renewBefore)
	}
	return at
}

func (m *certMaterial) unchanged(renewBefore time.Duration, wait string) rotation {
	r := rotation{wait: wait, renewAt: m.renewAt(renewBefore), certNotAfter: m.cert.NotAfter}
	if m.ca != nil {
		r.caNotAfter = m.ca.NotAfter
	}
	return r
}

func (m *certMaterial) result(renewBefore time.Duration, did, wait string) rotation {
	r := m.unchanged(renewBefore, wait)
	r.did = did
	r.caData = map[string][]byte{certKey: m.caPEM, keyKey: m.caKeyPM}
	var bundle []byte
	for _, b := range m.bundle {
		bundle = append(bundle, pemOf("CERTIFICATE", b.Raw)...)
	}
	r.tlsData = map[string][]byte{certKey: m.certPEM, keyKey: m.keyPEM, bundleKey: bundle}
	return r
}

func pemOf(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }

func serial() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)) }

// newCA makes a CA valid from now (an hour back, for skewed clocks) for
// caValidity.
func newCA(in *orchv1.ImsOrch, now time.Time) (*certMaterial, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: fmt.Sprintf("%s ims-orch CA %s", in.Name, now.UTC().Format("2006-01-02"))},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(caValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &certMaterial{ca: ca, caKey: key, caPEM: pemOf("CERTIFICATE", der), caKeyPM: pemOf("EC PRIVATE KEY", keyDER)}, nil
}

// issue makes the API certificate, signed by m.ca, for the client Service
// and every pod name in the headless Service (the pods also present it to
// each other as a client certificate: raft's mutual TLS, a follower
// forwarding a write), valid for certValidity but never beyond the CA.
func (m *certMaterial) issue(in *orchv1.ImsOrch, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	notAfter := now.Add(certValidity)
	if m.ca.NotAfter.Before(notAfter) {
		notAfter = m.ca.NotAfter
	}
	svc := fmt.Sprintf("%s.%s.svc", in.Name, in.Namespace)
	names := []string{in.Name, svc, svc + ".cluster.local",
		fmt.Sprintf("*.%s.%s.svc", peersService(in.Name), in.Namespace),
		fmt.Sprintf("*.%s.%s.svc.cluster.local", peersService(in.Name), in.Namespace)}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: svc}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca, &key.PublicKey, m.caKey)
	if err != nil {
		return err
	}
	if m.cert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	m.certPEM, m.keyPEM = pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", keyDER)
	return nil
}

// parseCertMaterial reads the generated Secrets' data. A CA Secret that is
// missing or unreadable leaves the CA unknown (a new one is made when one
// is needed); an unreadable TLS Secret is an error naming the key.
func parseCertMaterial(caData, tlsData map[string][]byte) (*certMaterial, error) {
	m := &certMaterial{certPEM: tlsData[certKey], keyPEM: tlsData[keyKey]}
	certs, err := parseCerts(tlsData[certKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certKey, err)
	}
	m.cert = certs[0]
	if len(m.keyPEM) == 0 {
		return nil, fmt.Errorf("%s: empty", keyKey)
	}
	if m.bundle, err = parseCerts(tlsData[bundleKey]); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleKey, err)
	}
	if caData != nil {
		cas, cerr := parseCerts(caData[certKey])
		key, kerr := parseECKey(caData[keyKey])
		if cerr == nil && kerr == nil && cas[0].IsCA {
			m.ca, m.caKey, m.caPEM, m.caKeyPM = cas[0], key, caData[certKey], caData[keyKey]
		}
	}
	return m, nil
}

// parseCerts reads the PEM certificates of b (at least one).
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

func parseECKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// bundleSum identifies a CA bundle (the pod template's trust annotation).
func bundleSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
