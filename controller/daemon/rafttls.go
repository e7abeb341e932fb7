package daemon

import (
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/raftls"
)

// Raft over mutual TLS (issue 19; docs/operations.md "Raft transport
// security"): with node.raftTLS every raft connection is TLS 1.3 in which
// both ends present a certificate of the cluster CA (controller/raftls). A
// cluster node whose raftBind is not a loopback address must set it; on
// loopback plain TCP is still allowed (tests, one machine), with a warning.

// RaftTLSConfig names the PEM files of raft's mutual TLS.
type RaftTLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA is the cluster CA bundle; every node's certificate must chain to it.
	CA string `yaml:"ca"`
	// ServerName, when set, is the name every node's certificate must hold;
	// empty: the host of the peer's raft address (an IP or DNS SAN).
	ServerName string `yaml:"serverName"`
}

// normalizeRaftTLS checks node.raftTLS.
func (c *Config) normalizeRaftTLS() error {
	t := c.Node.RaftTLS
	if !c.Clustered() {
		if t != nil {
			return errors.New("node.raftTLS: only in cluster mode (node.raftBind is set)")
		}
		return nil
	}
	if t == nil {
		if !loopbackHost(c.Node.RaftBind) {
			return fmt.Errorf("node.raftTLS: required when node.raftBind (%s) is not a loopback address: raft would accept RPCs from anyone who reaches the port", c.Node.RaftBind)
		}
		return nil
	}
	switch {
	case t.Cert == "":
		return errors.New("node.raftTLS.cert: required")
	case t.Key == "":
		return errors.New("node.raftTLS.key: required")
	case t.CA == "":
		return errors.New("node.raftTLS.ca: required (the cluster CA bundle)")
	}
	return nil
}

func loopbackHost(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// raftStream is the raft stream layer of this node: mutual TLS with
// node.raftTLS, nil (plain TCP) without.
func (d *Daemon) raftStream() (raft.StreamLayer, error) {
	t := d.cfg.Node.RaftTLS
	if t == nil {
		d.log.Warn("raft runs over plain TCP on loopback without authentication; set node.raftTLS", "raftBind", d.cfg.Node.RaftBind)
		return nil, nil
	}
	srv, cli, err := raftls.Configs(raftls.Files{Cert: t.Cert, Key: t.Key, CA: t.CA, ServerName: t.ServerName})
	if err != nil {
		return nil, fmt.Errorf("node.raftTLS: %w", err)
	}
	s, err := raftls.Listen(d.cfg.Node.RaftBind, srv, cli, func(remote string, err error) {
		d.log.Warn("raft connection refused: no valid certificate of the cluster CA", "remote", remote, "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("node.raftBind %s: %w", d.cfg.Node.RaftBind, err)
	}
	return s, nil
}
