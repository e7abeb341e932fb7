// Package raftls owns raft's transport security: a hashicorp/raft
// StreamLayer over mutual TLS. Every raft connection, in and out, is a TLS
// 1.3 session in which both ends present a certificate signed by the
// cluster's CA; a peer without one cannot open a connection, so it can
// neither join nor send an RPC (AppendEntries, RequestVote,
// InstallSnapshot, TimeoutNow). The node's certificate and key are read
// from their files again when the files change (checked at each handshake,
// at most once a second), so a rotated certificate is used without a
// restart; the CA bundle is read at start (rotate a CA by first deploying a
// bundle that holds the old and the new CA on every node: docs/operations.md).
package raftls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Files names the PEM files of a node.
type Files struct {
	// Cert and Key are this node's certificate (with the CA's chain if
	// intermediate) and key; the certificate must hold the name peers dial
	// (ServerName, or the host of its raft address as an IP or DNS SAN) and
	// allow both server and client authentication.
	Cert, Key string
	// CA is the cluster CA bundle that signs every node's certificate.
	CA string
	// ServerName, when set, is the name every peer's certificate must hold
	// (as Consul's server.<dc>.consul); empty: the host of the address dialled.
	ServerName string
}

// keyPair reloads a certificate and key when their files change.
type keyPair struct {
	cert, key string
	mu        sync.Mutex
	cur       *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	checked   time.Time
	now       func() time.Time // nil: time.Now
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.now != nil {
		now = k.now()
	}
	if k.cur != nil && now.Sub(k.checked) < time.Second {
		return k.cur, nil
	}
	k.checked = now
	cs, err1 := os.Stat(k.cert)
	ks, err2 := os.Stat(k.key)
	if err := errors.Join(err1, err2); err != nil {
		if k.cur != nil {
			return k.cur, nil // keep the loaded pair while the files are being replaced
		}
		return nil, err
	}
	if k.cur != nil && cs.ModTime().Equal(k.certMod) && ks.ModTime().Equal(k.keyMod) {
		return k.cur, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.cur != nil {
			return k.cur, nil // a half-written pair: retry at the next check
		}
		return nil, fmt.Errorf("raft tls: %w", err)
	}
	k.cur, k.certMod, k.keyMod = &c, cs.ModTime(), ks.ModTime()
	return k.cur, nil
}

// Configs returns the server and client TLS configurations of a node.
func Configs(f Files) (server, client *tls.Config, err error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, nil, errors.New("raft tls: cert, key and ca are all required")
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("raft tls ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("raft tls ca %s: no PEM certificate in it", f.CA)
	}
	kp := &keyPair{cert: f.Cert, key: f.Key}
	if _, err := kp.get(); err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	client = &tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              pool,
		ServerName:           f.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() },
	}
	return server, client, nil
}

// HandshakeTimeout bounds a TLS handshake of a raft connection.
const HandshakeTimeout = 5 * time.Second

// StreamLayer is raft's stream layer over mutual TLS.
type StreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	onRefused func(remote string, err error)

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// Listen binds addr (host:port; port 0 picks one) for raft over mutual TLS.
// onRefused (nil: ignored) hears each incoming connection refused in the
// handshake: the remote address and why.
func Listen(addr string, server, client *tls.Config, onRefused func(remote string, err error)) (*StreamLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &StreamLayer{ln: ln, advertise: ln.Addr(), server: server, client: client, onRefused: onRefused,
		conns: make(chan net.Conn), done: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

// acceptLoop accepts TCP connections and hands each to a handshake of its
// own, so a slow or hostile peer cannot hold up the others.
func (s *StreamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			_ = s.Close()
			return
		}
		go s.handshake(c)
	}
}

func (s *StreamLayer) handshake(c net.Conn) {
	tc := tls.Server(c, s.server)
	_ = tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		if s.onRefused != nil {
			s.onRefused(c.RemoteAddr().String(), err)
		}
		_ = c.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case s.conns <- tc:
	case <-s.done:
		_ = tc.Close()
	}
}

// Accept returns the next incoming connection whose peer completed the
// mutual-TLS handshake with a certificate of the cluster CA. Connections
// that fail it are closed, reported to onRefused, and never reach raft.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening.
func (s *StreamLayer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		close(s.done)
	})
	return err
}

// Addr is the address peers dial.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a mutual-TLS connection to a peer's raft address.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	cfg := s.client
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, fmt.Errorf("raft tls dial %s: %w", address, err)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	c, err := tls.DialWithDialer(d, "tcp", string(address), cfg)
	if err != nil {
		return nil, fmt.Errorf("raft tls dial %s: %w", address, err)
	}
	return c, nil
}
