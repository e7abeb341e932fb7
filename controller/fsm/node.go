package fsm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Peer is another member of the raft cluster.
type Peer struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// NodeConfig sets up one raft node.
type NodeConfig struct {
	// ID is this node's raft server ID (unique in the cluster).
	ID string
	// Dir holds the raft-wal log and stable store (Dir/wal) and the file
	// snapshots (Dir/snapshots). Empty means raft's in-memory stores (tests).
	Dir string
	// Bind is the TCP address of the raft transport (e.g. 127.0.0.1:7000).
	// Ignored when Transport is set.
	Bind string
	// Transport overrides the TCP transport (raft.NewInmemTransport in tests).
	Transport raft.Transport
	// Peers are the other voters, used only when bootstrapping.
	Peers []Peer
	// Bootstrap creates the cluster (self + Peers) when the node has no
	// state yet. Set it on exactly one node, or on all with the same peers.
	Bootstrap bool
	// SkipBootstrap, when set, is asked before a Bootstrap node without
	// state creates its cluster; skip true keeps it from doing so (the
	// reason is returned for the log): a node that lost its disk must not
	// found a second cluster beside the one its peers still run.
	SkipBootstrap func() (reason string, skip bool)
	// Raft overrides raft.DefaultConfig() (LocalID is always set to ID).
	Raft *raft.Config
	// LogOutput receives raft's logs (default io.Discard) when Logger is nil.
	LogOutput io.Writer
	// Logger receives raft's logs (SlogLogger routes them to a slog.Logger).
	Logger hclog.Logger
	// Stream is the stream layer of raft's network transport (raftls: mutual
	// TLS); nil: plain TCP on Bind. Ignored when Transport is set.
	Stream raft.StreamLayer
}

// Node is a raft node over an FSM.
type Node struct {
	Raft *raft.Raft
	FSM  *FSM
	ID   string

	trans   raft.Transport
	closers []io.Closer
}

// transportConfig is the network transport of a node: 3 pooled
// connections, 10 s I/O timeout, and no pipelined replication
// (MaxRPCsInFlight 1: each AppendEntries waits for its answer). raft
// 1.8.0's pipeline can deadlock: when a follower answers Success=false
// (a stale term at a leadership change, a log mismatch) the pipeline's
// decoder exits while the sender may still issue one more request, which
// then waits forever on the decoder; the leader never replicates to that
// follower again (its heartbeats go on, so no election heals it) and
// Raft.Shutdown waits for that goroutine forever (TestClusterRoundsOverHTTP
// hung in the stopped leader's Shutdown 2 of 12 runs at load 35–61; the
// same analysis in grafana/pyroscope#5518). raft's own documentation finds
// pipelining of little benefit below high network latency.
// Every raft network transport of this project is built from it (NewNode,
// NewNetworkTransport).
func transportConfig(stream raft.StreamLayer, log hclog.Logger) *raft.NetworkTransportConfig {
	return &raft.NetworkTransportConfig{Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: log, MaxRPCsInFlight: 1}
}

// NewNetworkTransport is a node's raft network transport over stream
// (transportConfig: no pipelined replication), for callers that build the
// transport themselves and pass it as NodeConfig.Transport.
func NewNetworkTransport(stream raft.StreamLayer, log hclog.Logger) *raft.NetworkTransport {
	return raft.NewNetworkTransportWithConfig(transportConfig(stream, log))
}

// NewNode starts a raft node.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("fsm node: ID is empty")
	}
	out := cfg.LogOutput
	if out == nil {
		out = io.Discard
	}
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rc = &c
	}
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = cfg.Logger
	if rc.Logger == nil {
		rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft-" + cfg.ID, Output: out, Level: hclog.Info})
	}

	n := &Node{FSM: New(), ID: cfg.ID}
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.Dir == "" {
		s := raft.NewInmemStore()
		logs, stable, snaps = s, s, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, "wal"), 0o750); err != nil {
			return nil, fmt.Errorf("fsm node dir: %w", err)
		}
		// WAL.Close does not close its meta store (a bolt file lock): own it.
		meta := &metadb.BoltMetaDB{}
		n.closers = append(n.closers, meta)
		w, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.WithMetaStore(meta))
		if err != nil {
			n.close()
			return nil, fmt.Errorf("fsm node wal: %w", err)
		}
		n.closers = append(n.closers, w)
		fs, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 3, rc.Logger)
		if err != nil {
			n.close()
			return nil, fmt.Errorf("fsm node snapshots: %w", err)
		}
		logs, stable, snaps = w, w, fs
	}
	trans := cfg.Transport
	if trans == nil && cfg.Stream != nil {
		t := NewNetworkTransport(cfg.Stream, rc.Logger)
		trans = t
		n.closers = append(n.closers, t)
	}
	if trans == nil {
		if cfg.Bind == "" {
			n.close()
			return nil, errors.New("fsm node: Bind is empty and no Transport given")
		}
		t, err := raft.NewTCPTransportWithConfig(cfg.Bind, nil, transportConfig(nil, rc.Logger))
		if err != nil {
			n.close()
			return nil, fmt.Errorf("fsm node bind %s: %w", cfg.Bind, err)
		}
		trans = t
		n.closers = append(n.closers, t)
	}
	n.trans = trans
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, stable, snaps)
		if err != nil {
			n.close()
			return nil, err
		}
		skip := false
		if !has && cfg.SkipBootstrap != nil {
			_, skip = cfg.SkipBootstrap()
		}
		if !has && !skip {
			conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
			for _, p := range cfg.Peers {
				conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
			}
			if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, conf); err != nil {
				n.close()
				return nil, fmt.Errorf("fsm node bootstrap: %w", err)
			}
		}
	}
	r, err := raft.NewRaft(rc, n.FSM, logs, stable, snaps, trans)
	if err != nil {
		n.close()
		return nil, err
	}
	n.Raft = r
	return n, nil
}

// Addr is the node's raft transport address.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// Apply replicates a command and waits until it is applied here; it returns
// the error that rejected it (ErrStale...) or raft's error (not leader...).
func (n *Node) Apply(c Command, timeout time.Duration) error {
	b, err := Encode(c)
	if err != nil {
		return err
	}
	f := n.Raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// Barrier waits until every entry committed before the call is applied to
// the local FSM (a new leader calls it before reading the state).
func (n *Node) Barrier(timeout time.Duration) error {
	return n.Raft.Barrier(timeout).Error()
}

// Shutdown stops raft and closes the stores and transport.
func (n *Node) Shutdown() error {
	err := n.Raft.Shutdown().Error()
	n.close()
	return err
}

func (n *Node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		_ = n.closers[i].Close()
	}
	n.closers = nil
}
