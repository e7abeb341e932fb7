package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/api"
)

// The bootstrap rule. A node with node.bootstrap founds a cluster of
// itself when its raft directory is empty. That is right once, at the
// cluster's first start; a bootstrap node that lost its disk later (a
// Kubernetes pod-0 whose volume was replaced) would found a second,
// one-node cluster beside the one its peers still run, and both would take
// writes. So before founding a cluster of itself it asks every peer's
// /healthz: when one answers raft "member", it founds nothing and waits as
// an empty node, and the running cluster's leader, which still lists it,
// replicates the log to it (or an operator joins it). Peers that do not
// answer within the probe timeout count as absent (the first start, when
// the others are not running yet).

// defaultBootstrapProbe bounds the whole peer probe.
const defaultBootstrapProbe = 3 * time.Second

// clusterElsewhere is fsm.NodeConfig.SkipBootstrap: skip (with the reason)
// when a peer reports it is in a cluster.
func (d *Daemon) clusterElsewhere() (string, bool) {
	timeout := d.opt.BootstrapProbeTimeout
	if timeout <= 0 {
		timeout = defaultBootstrapProbe
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hc := &http.Client{}
	if d.peerTr != nil {
		hc.Transport = d.peerTr
	}
	type answer struct {
		id   string
		raft string
		err  error
	}
	var asked int
	ch := make(chan answer)
	for _, p := range d.cfg.Node.Peers {
		if p.API == "" {
			continue
		}
		asked++
		go func() {
			r, err := peerRaftMembership(ctx, hc, p.API)
			ch <- answer{p.ID, r, err}
		}()
	}
	var silent []string
	found := ""
	for range asked {
		a := <-ch
		switch {
		case a.err != nil:
			silent = append(silent, a.id)
		case a.raft == api.RaftMember && found == "":
			found = a.id
			cancel() // one is enough; the others' answers still drain
		}
	}
	if found != "" {
		reason := fmt.Sprintf("peer %s is in a raft cluster", found)
		d.log.Warn("raft: bootstrap skipped: this node has no raft state but a peer runs a cluster; waiting to be replicated to or joined",
			"peer", found)
		return reason, true
	}
	if asked > 0 {
		d.log.Info("raft: no peer runs a cluster; founding one", "peersAsked", asked, "peersSilent", strings.Join(silent, ","))
	}
	return "", false
}

// peerRaftMembership reads Health.Raft from a peer's /healthz.
func peerRaftMembership(ctx context.Context, hc *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/healthz", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("healthz: %s", resp.Status)
	}
	var h api.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&h); err != nil {
		return "", fmt.Errorf("healthz: %w", err)
	}
	return h.Raft, nil
}

// RaftMembership implements api.RaftMembership: member when the node holds
// a raft configuration, none while it waits to be joined, "" outside a
// cluster.
func (b *Backend) RaftMembership() string {
	n := b.d.node
	if n == nil {
		return ""
	}
	f := n.Raft.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) == 0 {
		return api.RaftNone
	}
	return api.RaftMember
}
