package daemon

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// NewAdvertisedTransport is configured as every node's transport: no
// pipelined replication (raft 1.8.0's pipeline can deadlock; fsm's
// transportConfig).
func TestAdvertisedTransportDoesNotPipeline(t *testing.T) {
	tr, err := NewAdvertisedTransport("127.0.0.1:0", "localhost:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	p, err := tr.AppendEntriesPipeline("n2", "127.0.0.1:1")
	if p != nil {
		_ = p.Close()
	}
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline: %v, want raft.ErrPipelineReplicationNotSupported", err)
	}
}
