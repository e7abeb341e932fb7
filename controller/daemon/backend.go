package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Backend implements api.Backend over a node.
//
// What is replicated (the raft FSM: writes are commits on the leader, reads
// come from the local FSM on any node, so a follower answers with the
// leader's data once it is replicated, and it survives a leader change):
//   - the topology: datacenter names, delays, VNF capacities, chain;
//   - the policy in force ("default"): its delay bound and its instance
//     limits (fsm.Policy.Limits), which the global controller sends to the
//     local controllers with each decision, so a change applies from the
//     next round;
//   - saved policies other than "default" (documents "policy/NAME");
//   - datacenter labels: group, region, AZ (documents "labels/DC"; a DC
//     without one shows the labels of this node's config file);
//   - drained datacenters (fsm.State.Drained) and the scale, drain and
//     undrain operation records (documents "op/ID", the last 100 kept): any
//     node answers GET operation, and an open drain's state is computed on
//     read from the DC's last step-2 report.
//
// Settings the running controllers were built with (datacenter set, chain,
// thresholds, interval, τ, predictor, strategy) cannot change while the
// daemon runs: such a write is refused with a ValidationError that says to
// edit the config and restart.
type Backend struct {
	d *Daemon

	// mu serializes writes (read, check, commit) and guards the fields
	mu     sync.Mutex
	types  []api.VNFType
	chains []api.Chain
}

var _ api.Backend = (*Backend)(nil)

func newBackend(d *Daemon) *Backend {
	c := d.cfg
	b := &Backend{d: d}
	t := c.Topology
	vt := func(v VNFConfig, plane vnf.Plane) api.VNFType {
		return api.NewVNFType(v.Type(plane), orDriverDefault(v.Image), orDriverDefault(v.Flavor))
	}
	b.types = []api.VNFType{vt(t.PCSCF, vnf.ControlPlane), vt(t.SCSCF, vnf.ControlPlane)}
	stages := []string{}
	for _, v := range t.Chain {
		b.types = append(b.types, vt(v, vnf.DataPlane))
		stages = append(stages, v.Name)
	}
	b.chains = []api.Chain{{Name: "dp", Stages: stages}}
	return b
}

// ---- leadership ----

func (b *Backend) leader() (id string, isSelf bool) {
	n := b.d.node
	if n == nil {
		return b.d.cfg.Node.ID, true
	}
	_, lid := n.Raft.LeaderWithID()
	return string(lid), n.Raft.State() == raft.Leader
}

func (b *Backend) peerAPI(id string) string {
	if id == b.d.cfg.Node.ID {
		return b.d.cfg.API.URL
	}
	for _, p := range b.d.cfg.Node.Peers {
		if p.ID == id {
			return p.API
		}
	}
	return ""
}

// writable returns nil on the leader, *api.NotLeaderError on a follower
// that knows the leader, api.ErrNoLeader otherwise.
func (b *Backend) writable() error {
	id, self := b.leader()
	if self {
		return nil
	}
	if id == "" {
		return api.ErrNoLeader
	}
	return &api.NotLeaderError{LeaderID: id, LeaderAddr: b.peerAPI(id)}
}

// commit applies a command through the store (raft on a cluster).
func (b *Backend) commit(c fsm.Command) error {
	if err := b.d.store.Apply(c); err != nil {
		return b.storeErr("commit", err)
	}
	return nil
}

// sync makes the local FSM hold every committed command (a raft barrier)
// before a write reads what it replaces.
func (b *Backend) sync() error {
	if err := b.d.store.Sync(); err != nil {
		return b.storeErr("sync", err)
	}
	return nil
}

// storeErr turns a lost leadership into the API's NotLeaderError.
func (b *Backend) storeErr(what string, err error) error {
	if errors.Is(err, global.ErrNotLeader) {
		if w := b.writable(); w != nil {
			return w
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// putDoc commits a replicated document (field names the request part that
// makes it too large).
func (b *Backend) putDoc(key string, v any, field string) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(doc) > fsm.MaxDocBytes {
		ve := &api.ValidationError{}
		ve.Add(field, "makes a %d-byte document, at most %d", len(doc), fsm.MaxDocBytes)
		return ve
	}
	return b.commit(fsm.PutDoc{Key: key, Doc: doc})
}

func restart(v *api.ValidationError, field, what string) {
	v.Add(field, "%s cannot change while the daemon runs: edit the config file and restart serve", what)
}

// ---- configuration ----

// Ready implements api.Backend: a leader is known and the topology is
// committed.
func (b *Backend) Ready(context.Context) error {
	if b.d.node != nil {
		if id, _ := b.leader(); id == "" {
			return api.ErrNoLeader
		}
	}
	if b.d.store.State().Topology == nil {
		return errors.New("no topology committed yet")
	}
	return nil
}

// ---- metrics ----
