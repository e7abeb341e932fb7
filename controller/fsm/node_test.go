package fsm

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// tcpLayer is a plain-TCP raft stream layer (what NodeConfig.Stream takes).
type tcpLayer struct{ net.Listener }

func (l tcpLayer) Dial(a raft.ServerAddress, d time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(a), d)
}

// A node's network transport does not pipeline replication, on Bind and on
// a given stream layer alike: raft 1.8.0's pipeline can deadlock after a
// follower's Success=false (transportConfig), so the leader replicates with
// one AppendEntries in flight per follower.
func TestNodeTransportDoesNotPipeline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]NodeConfig{
		"bind":   {ID: "n1", Bind: "127.0.0.1:0"},
		"stream": {ID: "n1", Stream: tcpLayer{ln}},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := NewNode(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Shutdown()
			p, err := n.trans.AppendEntriesPipeline("n2", "127.0.0.1:1")
			if p != nil {
				_ = p.Close()
			}
			if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
				t.Fatalf("AppendEntriesPipeline: %v, want raft.ErrPipelineReplicationNotSupported", err)
			}
		})
	}
}
