package raftls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func writePEM(t *testing.T, path, typ string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, dir, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	f := filepath.Join(dir, name+".crt")
	writePEM(t, f, "CERTIFICATE", der)
	return &ca{cert: c, key: key, file: f}
}

// issue writes a node certificate for 127.0.0.1 signed by c.
func (c *ca) issue(t *testing.T, dir, name string, serial int64) Files {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: c.file}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	writePEM(t, f.Key, "EC PRIVATE KEY", kb)
	return f
}

type refusals struct {
	mu  sync.Mutex
	n   int
	why []string
}

func (r *refusals) add(_ string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.why = append(r.why, err.Error())
}

func (r *refusals) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func transport(t *testing.T, f Files, ref *refusals) *raft.NetworkTransport {
	t.Helper()
	srv, cli, err := Configs(f)
	if err != nil {
		t.Fatal(err)
	}
	var on func(string, error)
	if ref != nil {
		on = ref.add
	}
	s, err := Listen("127.0.0.1:0", srv, cli, on)
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: s, MaxPool: 1, Timeout: 2 * time.Second})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// serve answers every RPC that reaches tr and counts them.
func serve(tr *raft.NetworkTransport) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for rpc := range tr.Consumer() {
			n.Add(1)
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		}
	}()
	return &n
}

// Two nodes with certificates of the cluster CA exchange raft RPCs; a peer
// with a certificate of another CA, or with none, cannot: its connection is
// refused in the handshake and no RPC reaches raft.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	cluster := newCA(t, dir, "cluster-ca")
	other := newCA(t, dir, "other-ca")
	ref := &refusals{}
	a := transport(t, cluster.issue(t, dir, "node1", 2), ref)
	rpcs := serve(a)
	b := transport(t, cluster.issue(t, dir, "node2", 3), nil)
	var resp raft.AppendEntriesResponse
	args := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("node2"), Addr: []byte(b.LocalAddr())}, Term: 1}
	if err := b.AppendEntries("node1", a.LocalAddr(), args, &resp); err != nil || !resp.Success {
		t.Fatalf("a member's AppendEntries: %v %+v", err, resp)
	}

	// a certificate of another CA whose bundle trusts ours: refused by node1
	intruderFiles := other.issue(t, dir, "intruder", 4)
	bundle := filepath.Join(dir, "both.crt")
	ob, _ := os.ReadFile(other.file)
	cb, _ := os.ReadFile(cluster.file)
	if err := os.WriteFile(bundle, append(ob, cb...), 0o600); err != nil {
		t.Fatal(err)
	}
	intruderFiles.CA = bundle
	intruder := transport(t, intruderFiles, nil)
	err := intruder.AppendEntries("node1", a.LocalAddr(), args, &resp)
	if err == nil {
		t.Fatal("a peer with a certificate of another CA sent an RPC")
	}
	var vresp raft.RequestVoteResponse
	if err := intruder.RequestVote("node1", a.LocalAddr(), &raft.RequestVoteRequest{Term: 99}, &vresp); err == nil {
		t.Fatal("a peer with a certificate of another CA asked for a vote")
	}

	// no certificate at all (plain TCP raft, as before issue 19)
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.AppendEntries("node1", a.LocalAddr(), args, &resp); err == nil {
		t.Fatal("a plain-TCP peer sent an RPC")
	}
	// and node1 will not talk to a server with a foreign certificate either
	rpcsIntruder := serve(intruder)
	if err := a.AppendEntries("intruder", intruder.LocalAddr(), args, &resp); err == nil {
		t.Fatal("node1 sent an RPC to a peer with a foreign certificate")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ref.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ref.count() < 3 {
		t.Fatalf("%d refused handshakes logged at node1, want ≥ 3", ref.count())
	}
	if rpcs.Load() != 1 || rpcsIntruder.Load() != 0 {
		t.Fatalf("RPCs that reached raft: node1 %d (want only the member's 1), intruder %d", rpcs.Load(), rpcsIntruder.Load())
	}
	if !strings.Contains(strings.Join(ref.why, "\n"), "certificate") {
		t.Fatalf("refusals do not say why: %q", ref.why)
	}
}

// A rotated certificate (files replaced in place) is used for new
// connections without a restart.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	cluster := newCA(t, dir, "cluster-ca")
	f := cluster.issue(t, dir, "node1", 10)
	now := time.Unix(1_800_000_000, 0)
	kp := &keyPair{cert: f.Cert, key: f.Key, now: func() time.Time { return now }}
	c1, err := kp.get()
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second) // the reload check runs at most once a second
	g := cluster.issue(t, t.TempDir(), "node1", 11)
	for _, p := range [][2]string{{g.Cert, f.Cert}, {g.Key, f.Key}} {
		b, _ := os.ReadFile(p[0])
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(time.Second) // a new mtime even on a coarse file system clock
		_ = os.Chtimes(p[1], mt, mt)
	}
	c2, err := kp.get()
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := x509.ParseCertificate(c1.Certificate[0])
	l2, _ := x509.ParseCertificate(c2.Certificate[0])
	if l1.SerialNumber.Cmp(l2.SerialNumber) == 0 || l2.SerialNumber.Int64() != 11 {
		t.Fatalf("serial %v after rotation, want 11", l2.SerialNumber)
	}
}
