package daemon

import (
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/fsm"
)

// Identity is what differs between the nodes of one cluster that share a
// config file, such as the pods of a Kubernetes StatefulSet (deploy/operator
// passes them as `serve` flags from the pod's name).
type Identity struct {
	// NodeID overrides node.id; the peer of that id, if the shared
	// node.peers lists it, is dropped (a node is not its own peer).
	NodeID string
	// APIURL overrides api.url (how the peers reach this node's API).
	APIURL string
	// BootstrapNode sets node.bootstrap on the node whose id it is, and
	// clears it on every other node: that node creates a cluster of itself
	// when it has no raft state; the others wait to be joined.
	BootstrapNode string
}

// ApplyIdentity applies id's non-empty fields to c and normalizes c again.
func (c *Config) ApplyIdentity(id Identity) error {
	if id.NodeID != "" {
		c.Node.ID = id.NodeID
		c.Node.Peers = slices.DeleteFunc(c.Node.Peers, func(p PeerConfig) bool { return p.ID == id.NodeID })
	}
	if id.APIURL != "" {
		c.API.URL = id.APIURL
	}
	if id.BootstrapNode != "" {
		c.Node.Bootstrap = c.Node.ID == id.BootstrapNode
	}
	return c.Normalize()
}

// advertise returns stream (raft's TLS stream layer, or plain TCP on bind
// when stream is nil) advertising addr (host:port) instead of the bound
// address: a pod's IP changes when it is rescheduled, its name in a
// headless Service does not, and raft keeps the advertised address in its
// configuration. Port 0 in addr stands for the port bound.
func advertise(stream raft.StreamLayer, bind, addr string) (raft.StreamLayer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("raft advertise address %q: want host:port", addr)
	}
	if stream == nil {
		ln, err := net.Listen("tcp", bind)
		if err != nil {
			return nil, fmt.Errorf("raft bind %s: %w", bind, err)
		}
		stream = &tcpLayer{Listener: ln}
	}
	if port == "0" {
		_, bound, _ := net.SplitHostPort(stream.Addr().String())
		addr = net.JoinHostPort(host, bound)
	}
	return &advertisedLayer{StreamLayer: stream, adv: advertisedAddr(addr)}, nil
}

// NewAdvertisedTransport is a plain-TCP raft transport on bind advertising
// advertise (see advertise), for tests and callers that build the
// transport themselves; configured as every node's (fsm.NewNetworkTransport:
// no pipelined replication).
func NewAdvertisedTransport(bind, addr string, logOutput io.Writer) (*raft.NetworkTransport, error) {
	stream, err := advertise(nil, bind, addr)
	if err != nil {
		return nil, err
	}
	if logOutput == nil {
		logOutput = io.Discard
	}
	return fsm.NewNetworkTransport(stream, hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: logOutput, Level: hclog.Info})), nil
}

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// advertisedLayer is a raft.StreamLayer whose Addr is the advertised name.
type advertisedLayer struct {
	raft.StreamLayer
	adv advertisedAddr
}

func (l *advertisedLayer) Addr() net.Addr { return l.adv }

// tcpLayer is a plain-TCP raft.StreamLayer.
type tcpLayer struct{ net.Listener }

func (l *tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
