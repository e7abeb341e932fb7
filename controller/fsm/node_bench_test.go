package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// benchCluster starts three nodes over TCP on 127.0.0.1 (raft's default
// timeouts; raft-wal in temp dirs when wal, else in-memory stores), every
// one bootstrapped with the same voters, and returns the leader. pipelined
// gives each node raft's default transport (2 RPCs in flight: pipelined
// replication) instead of transportConfig's (1: none).
func benchCluster(b *testing.B, wal, pipelined bool) *Node {
	b.Helper()
	log := hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	trs := make([]*raft.NetworkTransport, 3)
	for i := range trs {
		cfg := transportConfig(nil, log)
		if pipelined {
			cfg.MaxRPCsInFlight = 0 // raft's default
		}
		t, err := raft.NewTCPTransportWithConfig("127.0.0.1:0", nil, cfg)
		if err != nil {
			b.Fatal(err)
		}
		trs[i] = t
	}
	nodes := make([]*Node, 3)
	for i := range nodes {
		var peers []Peer
		for j, t := range trs {
			if j != i {
				peers = append(peers, Peer{ID: "n" + strconv.Itoa(j+1), Addr: string(t.LocalAddr())})
			}
		}
		cfg := NodeConfig{ID: "n" + strconv.Itoa(i+1), Transport: trs[i], Peers: peers, Bootstrap: true, Logger: log}
		if wal {
			cfg.Dir = b.TempDir()
		}
		n, err := NewNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
		b.Cleanup(func() { _ = n.Shutdown(); _ = trs[i].Close() })
	}
	// a leader that has committed an entry (bootstrapping three nodes at
	// once can take more than one election)
	var err error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		for _, n := range nodes {
			if n.Raft.State() != raft.Leader {
				continue
			}
			if err = n.Apply(PutDoc{Key: DocLabels + "warm-up", Doc: json.RawMessage(`{}`)}, 5*time.Second); err == nil {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond) // polling for the election, with a deadline
	}
	b.Fatalf("no leader committed in 30 s (last error %v)", err)
	return nil
}

// BenchmarkClusterCommits: commits/s of a three-node cluster on loopback
// TCP, with and without pipelined replication (fsm's transports do not
// pipeline: raft 1.8.0's pipeline can deadlock, transportConfig). writers
// goroutines apply a 1 KB document each, one after the other, on the
// leader; pipelining can only help when several AppendEntries could be in
// flight, i.e. with many writers.
func BenchmarkClusterCommits(b *testing.B) {
	doc := make([]byte, 0, 1100)
	doc = append(doc, `{"pad":"`...)
	for len(doc) < 1024 {
		doc = append(doc, 'x')
	}
	doc = append(doc, `","n":0}`...)
	for _, store := range []string{"mem", "wal"} {
		for _, writers := range []int{1, 16} {
			for _, pipelined := range []bool{false, true} {
				b.Run(fmt.Sprintf("store=%s/writers=%d/pipelined=%v", store, writers, pipelined), func(b *testing.B) {
					leader := benchCluster(b, store == "wal", pipelined)
					var next atomic.Int64
					var wg sync.WaitGroup
					var failed atomic.Int64
					var firstErr atomic.Value
					b.ResetTimer()
					start := time.Now()
					for w := range writers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							key := DocLabels + "bench-" + strconv.Itoa(w)
							for next.Add(1) <= int64(b.N) {
								if err := leader.Apply(PutDoc{Key: key, Doc: json.RawMessage(doc)}, 10*time.Second); err != nil {
									failed.Add(1)
									firstErr.CompareAndSwap(nil, err.Error())
								}
							}
						}()
					}
					wg.Wait()
					el := time.Since(start)
					b.StopTimer()
					if f := failed.Load(); f > 0 {
						b.Fatalf("%d of %d commits failed (first: %v; a leadership change under load)", f, b.N, firstErr.Load())
					}
					b.ReportMetric(float64(b.N)/el.Seconds(), "commits/s")
				})
			}
		}
	}
}
