package controller

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

var certTestInstance = &orchv1.ImsOrch{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}}

// verifies reports whether the API certificate of tlsData is trusted by
// the bundle of trust at now, for a pod name and the client Service.
func verifies(t *testing.T, in *orchv1.ImsOrch, tlsData, trust map[string][]byte, now time.Time) error {
	t.Helper()
	certs, err := parseCerts(tlsData[certKey])
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := parseCerts(trust[bundleKey])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, b := range bundle {
		pool.AddCert(b)
	}
	for _, host := range []string{podHost(in, 2), in.Name + "." + in.Namespace + ".svc"} {
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
			return err
		}
	}
	return nil
}

// mutualTrust fails unless a pod still running with TLS data a and one
// already running with b accept each other's certificate at now (raft's
// mutual TLS through a rolling update).
func mutualTrust(t *testing.T, a, b map[string][]byte, now time.Time) {
	t.Helper()
	if err := verifies(t, certTestInstance, a, b, now); err != nil {
		t.Fatalf("a pod with the new Secret refuses a peer with the old one: %v", err)
	}
	if err := verifies(t, certTestInstance, b, a, now); err != nil {
		t.Fatalf("a pod with the old Secret refuses a peer with the new one: %v", err)
	}
}

// certSteps walks the generated material through time.
type certSteps struct {
	t           *testing.T
	ca, tls     map[string][]byte
	renewBefore time.Duration
}

// at runs rotateCerts at now and keeps its result; it fails unless the
// step did what want says ("" nothing) and every pod keeps trusting every
// other across the change.
func (s *certSteps) at(now time.Time, podsTrust bool, want string) rotation {
	s.t.Helper()
	r, err := rotateCerts(certTestInstance, s.ca, s.tls, now, s.renewBefore, podsTrust)
	if err != nil {
		s.t.Fatal(err)
	}
	if (want == "") != (r.did == "") || !strings.Contains(r.did, want) {
		s.t.Fatalf("at %v: did %q, want %q", now, r.did, want)
	}
	if r.tlsData != nil {
		if s.tls != nil && now.Before(s.tlsNotAfter()) {
			mutualTrust(s.t, s.tls, r.tlsData, now)
		}
		s.tls = r.tlsData
	}
	if r.caData != nil {
		s.ca = r.caData
	}
	if err := verifies(s.t, certTestInstance, s.tls, s.tls, now); err != nil {
		s.t.Fatalf("at %v: the certificate is not trusted by its own bundle: %v", now, err)
	}
	return r
}

func (s *certSteps) tlsNotAfter() time.Time {
	c, err := parseCerts(s.tls[certKey])
	if err != nil {
		s.t.Fatal(err)
	}
	return c[0].NotAfter
}

func countCerts(t *testing.T, b []byte) int {
	t.Helper()
	c, err := parseCerts(b)
	if err != nil {
		t.Fatal(err)
	}
	return len(c)
}

// Years of a generated CA and API certificate on an injected clock: the
// certificate is renewed renewBefore ahead of its end (not a second
// earlier) from the same CA; the CA is replaced in two steps — a new CA
// joins the bundle, and only once every pod runs with that bundle does a
// certificate it signs replace the old one — and at no step does a pod with
// the old Secret refuse a pod with the new one or the reverse.
func TestRotateCerts(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	rb := 1000 * time.Hour
	s := &certSteps{t: t, renewBefore: rb}
	r := s.at(t0, true, "generated a CA and the API certificate")
	if !r.certNotAfter.Equal(t0.Add(certValidity)) || !r.caNotAfter.Equal(t0.Add(caValidity)) ||
		!r.renewAt.Equal(t0.Add(certValidity-rb)) || countCerts(t, s.tls[bundleKey]) != 1 {
		t.Fatalf("generated: %+v", r)
	}
	firstCA := s.ca[certKey]

	// certificate renewals from the same CA until the CA is due first
	renewals := 0
	for {
		r = s.at(r.renewAt.Add(-time.Second), false, "")
		if r.wait != "" {
			t.Fatalf("a second before its renewal: %q", r.wait)
		}
		caDue := r.caNotAfter.Add(-rb)
		if !caDue.After(r.renewAt) {
			break
		}
		before := s.tls[bundleKey]
		r = s.at(r.renewAt, false, "renewed the API certificate")
		renewals++
		if !bytes.Equal(s.ca[certKey], firstCA) || !bytes.Equal(s.tls[bundleKey], before) {
			t.Fatal("a certificate renewal changed the CA or the bundle")
		}
		if r.certNotAfter.After(r.caNotAfter) {
			t.Fatalf("certificate until %v outlives its CA (%v)", r.certNotAfter, r.caNotAfter)
		}
	}
	if renewals < 4 {
		t.Fatalf("%d renewals in 5 years of a 1-year certificate", renewals)
	}

	// the CA is due: a new CA beside the old, the certificate stays
	caDue := r.caNotAfter.Add(-rb)
	oldCert := s.tls[certKey]
	r = s.at(caDue, false, "generated a new CA")
	if bytes.Equal(s.ca[certKey], firstCA) || !bytes.Equal(s.tls[certKey], oldCert) || countCerts(t, s.tls[bundleKey]) != 2 {
		t.Fatalf("CA step: new CA %v, certificate kept %v, bundle of %d", !bytes.Equal(s.ca[certKey], firstCA),
			bytes.Equal(s.tls[certKey], oldCert), countCerts(t, s.tls[bundleKey]))
	}
	// the pods still run with the old bundle: the certificate waits
	later := caDue.Add(time.Hour)
	r = s.at(later, false, "")
	if !strings.Contains(r.wait, "waiting for every pod") || !bytes.Equal(s.tls[certKey], oldCert) {
		t.Fatalf("before the pods trust the new CA: wait %q, certificate replaced %v", r.wait, !bytes.Equal(s.tls[certKey], oldCert))
	}
	if !r.renewAt.Before(later) {
		t.Fatalf("a waiting step is due at %v, after now %v", r.renewAt, later)
	}
	// every pod runs with the new bundle: the new CA signs the certificate
	r = s.at(later, true, "replaced the API certificate by one the new CA signs")
	newCA, err := parseCerts(s.ca[certKey])
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := parseCerts(s.tls[certKey])
	if cert[0].CheckSignatureFrom(newCA[0]) != nil || r.wait != "" || !r.certNotAfter.Equal(later.Add(certValidity)) {
		t.Fatalf("after the CA step: signed by the new CA %v, wait %q, until %v", cert[0].CheckSignatureFrom(newCA[0]) == nil, r.wait, r.certNotAfter)
	}
	s.at(later.Add(time.Hour), true, "")

	// the next CA rotation drops the first CA (expired by then) from the bundle
	for r.renewAt.Before(r.caNotAfter.Add(-rb)) {
		r = s.at(r.renewAt, true, "renewed")
	}
	r = s.at(r.caNotAfter.Add(-rb), true, "generated a new CA")
	if n := countCerts(t, s.tls[bundleKey]); n != 2 {
		t.Fatalf("second CA rotation: bundle of %d, want the new and the signing CA", n)
	}
}

// An API TLS Secret made before the operator kept its CA (no CA Secret)
// stays as it is until its certificate falls due, then a new CA takes over
// in the two steps; one whose certificate expired already is replaced at
// once; a CA the bundle lacks is added first; an unreadable Secret is an
// error naming the key.
func TestRotateCertsFromOtherStates(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	rb := orchv1.DefaultCertRenewBefore
	gen, err := rotateCerts(certTestInstance, nil, nil, t0, rb, true)
	if err != nil {
		t.Fatal(err)
	}
	// no CA Secret: nothing to do while the certificate is good
	s := &certSteps{t: t, renewBefore: rb, tls: gen.tlsData}
	s.at(t0.Add(certValidity-rb-time.Second), true, "")
	if s.ca != nil {
		t.Fatal("a CA made while nothing was due")
	}
	s.at(t0.Add(certValidity-rb), true, "generated a new CA")
	if countCerts(t, s.tls[bundleKey]) != 2 || !bytes.Equal(s.tls[certKey], gen.tlsData[certKey]) {
		t.Fatal("the first step without a known CA does not keep the certificate beside a new CA")
	}
	s.at(t0.Add(certValidity-rb), true, "replaced the API certificate")

	// everything expired (the operator was away): new ones at once
	s = &certSteps{t: t, renewBefore: rb, tls: gen.tlsData}
	s.at(t0.Add(certValidity+time.Hour), false, "expired: generated a new CA and certificate")
	if countCerts(t, s.tls[bundleKey]) != 1 {
		t.Fatal("the expired CA is still in the bundle")
	}

	// a CA the bundle lacks is trusted before it signs
	other, err := rotateCerts(certTestInstance, nil, nil, t0, rb, true)
	if err != nil {
		t.Fatal(err)
	}
	s = &certSteps{t: t, renewBefore: rb, tls: gen.tlsData, ca: other.caData}
	s.at(t0.Add(time.Hour), false, "added the CA to the trusted bundle")
	s.at(t0.Add(time.Hour), true, "replaced the API certificate")

	for _, c := range []struct {
		key, want string
		val       []byte
	}{
		{certKey, "tls.crt: no PEM certificate", []byte("garbage")},
		{bundleKey, "ca.crt: no PEM certificate", nil},
		{keyKey, "tls.key: empty", nil},
	} {
		bad := map[string][]byte{}
		for k, v := range gen.tlsData {
			bad[k] = v
		}
		bad[c.key] = c.val
		if _, err := rotateCerts(certTestInstance, gen.caData, bad, t0, rb, true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.key, err, c.want)
		}
	}
}
