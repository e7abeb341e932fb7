package daemon

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
)

// Raft membership changes (api.MembershipBackend): join adds a voter and
// leave removes one, on the leader, one change at a time, refused when the
// voters the leader reaches would not be a quorum of the new configuration.
//
// Which voters the leader reaches comes from raft's own heartbeats: the
// leader's replication observes a FailedHeartbeatObservation for a peer
// whose heartbeat failed and a ResumedHeartbeatObservation when it answers
// again; peerContact keeps the last of the two per peer for the current
// leadership.

var _ api.MembershipBackend = (*Backend)(nil)

// membershipTimeout bounds one AddVoter or RemoveServer (the configuration
// entry must commit on a quorum of the new configuration).
const membershipTimeout = 10 * time.Second

// joinDialTimeout bounds the check that a joiner's raft address answers.
const joinDialTimeout = 3 * time.Second

// peerContact tracks which peers fail the leader's heartbeats.
type peerContact struct {
	mu      sync.Mutex
	failing map[raft.ServerID]bool
	change  sync.Mutex // one membership change at a time on this node
	obs     *raft.Observer
}

// watchPeers registers the heartbeat observer on n. The filter records the
// observation and drops it, so no channel or goroutine is needed.
func watchPeers(n *raft.Raft) *peerContact {
	pc := &peerContact{failing: map[raft.ServerID]bool{}}
	pc.obs = raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		pc.observe(o.Data)
		return false
	})
	n.RegisterObserver(pc.obs)
	return pc
}

func (pc *peerContact) observe(data any) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch o := data.(type) {
	case raft.FailedHeartbeatObservation:
		pc.failing[o.PeerID] = true
	case raft.ResumedHeartbeatObservation:
		delete(pc.failing, o.PeerID)
	case raft.PeerObservation:
		if o.Removed {
			delete(pc.failing, o.Peer.ID)
		}
	case raft.LeaderObservation:
		// a new leadership starts its replication afresh
		clear(pc.failing)
	}
}

func (pc *peerContact) isFailing(id raft.ServerID) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.failing[id]
}

// errNoRaft answers membership calls on a node without raft.
var errNoRaft = fmt.Errorf("%w: this node runs without raft (node.raftBind is empty)", api.ErrConflict)

// Cluster returns the raft configuration as this node sees it.
func (b *Backend) Cluster(context.Context) (api.Cluster, error) {
	n := b.d.node
	if n == nil {
		return api.Cluster{}, errNoRaft
	}
	return b.cluster()
}

func (b *Backend) cluster() (api.Cluster, error) {
	n := b.d.node
	f := n.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return api.Cluster{}, b.storeErr("configuration", err)
	}
	lid, self := b.leader()
	c := api.Cluster{Leader: lid, Members: []api.Member{}}
	for _, s := range f.Configuration().Servers {
		m := api.Member{ID: string(s.ID), RaftAddress: string(s.Address), Suffrage: api.SuffrageNonvoter, Contact: api.ContactUnknown}
		if s.Suffrage == raft.Voter {
			m.Suffrage = api.SuffrageVoter
			c.Voters++
		}
		switch {
		case string(s.ID) == lid:
			m.Contact = api.ContactLeader
		case !self:
		case b.d.peers.isFailing(s.ID):
			m.Contact = api.ContactFailing
		default:
			m.Contact = api.ContactOK
		}
		c.Members = append(c.Members, m)
	}
	c.Quorum = api.QuorumOf(c.Voters)
	return c, nil
}

// reached tells whether the leader reaches member m (m is the leader, or its
// heartbeats succeed).
func reached(m api.Member) bool {
	return m.Contact == api.ContactLeader || m.Contact == api.ContactOK
}

// reach counts the voters the leader reaches (itself included) in c.
func reach(c api.Cluster) (voters, reachable int) {
	for _, m := range c.Members {
		if m.Suffrage != api.SuffrageVoter {
			continue
		}
		voters++
		if reached(m) {
			reachable++
		}
	}
	return voters, reachable
}

// beginMembershipChange is where every join and leave starts: this node runs
// raft and may write, no other change runs (unlock ends that), and c is the
// configuration the change starts from.
func (b *Backend) beginMembershipChange() (n *fsm.Node, c api.Cluster, unlock func(), err error) {
	n = b.d.node
	if n == nil {
		return nil, c, nil, errNoRaft
	}
	if err := b.writable(); err != nil {
		return nil, c, nil, err
	}
	b.d.peers.change.Lock()
	if c, err = b.cluster(); err != nil {
		b.d.peers.change.Unlock()
		return nil, c, nil, err
	}
	return n, c, b.d.peers.change.Unlock, nil
}

// Join adds req as a voter. A voter already there at the same address is
// left alone (Changed false).
func (b *Backend) Join(ctx context.Context, req api.JoinRequest) (api.MembershipResult, error) {
	if err := req.Validate(); err != nil {
		return api.MembershipResult{}, err
	}
	n, c, unlock, err := b.beginMembershipChange()
	if err != nil {
		return api.MembershipResult{}, err
	}
	defer unlock()
	replacing := false
	for _, m := range c.Members {
		switch {
		case m.ID == req.ID && m.RaftAddress == req.RaftAddress && m.Suffrage == api.SuffrageVoter:
			return api.MembershipResult{Cluster: c}, nil
		case m.ID == req.ID:
			replacing = m.Suffrage == api.SuffrageVoter
		case m.RaftAddress == req.RaftAddress:
			v := &api.ValidationError{}
			v.Add("raftAddress", "%s is already the address of member %s", req.RaftAddress, m.ID)
			return api.MembershipResult{}, v
		}
	}
	voters, reachable := reach(c)
	if replacing {
		// the same voter at a new address: the count stays, it must
		// not be needed for the quorum while it moves
		for _, m := range c.Members {
			if m.ID == req.ID && reached(m) {
				reachable--
			}
		}
		voters--
	}
	if err := api.CheckJoin(voters, reachable); err != nil {
		return api.MembershipResult{}, err
	}
	d := net.Dialer{Timeout: joinDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", req.RaftAddress)
	if err != nil {
		return api.MembershipResult{}, fmt.Errorf("%w: raftAddress %s does not answer: %v", api.ErrConflict, req.RaftAddress, err)
	}
	_ = conn.Close()
	if err := n.Raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), 0, membershipTimeout).Error(); err != nil {
		return api.MembershipResult{}, b.storeErr("join "+req.ID, err)
	}
	b.d.log.Info("raft member joined", "id", req.ID, "raft", req.RaftAddress)
	c, err = b.cluster()
	return api.MembershipResult{Changed: true, Cluster: c}, err
}

// Leave removes the member id. Removing the leader itself is allowed: it
// steps down once the configuration without it commits.
func (b *Backend) Leave(_ context.Context, id string) (api.MembershipResult, error) {
	n, c, unlock, err := b.beginMembershipChange()
	if err != nil {
		return api.MembershipResult{}, err
	}
	defer unlock()
	var leaving *api.Member
	for i := range c.Members {
		if c.Members[i].ID == id {
			leaving = &c.Members[i]
		}
	}
	if leaving == nil {
		return api.MembershipResult{}, fmt.Errorf("%w: %s is not a raft member", api.ErrNotFound, id)
	}
	if leaving.Suffrage == api.SuffrageVoter {
		voters, reachable := reach(c)
		if err := api.CheckLeave(voters, reachable, reached(*leaving)); err != nil {
			return api.MembershipResult{}, err
		}
	}
	if err := n.Raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout).Error(); err != nil {
		return api.MembershipResult{}, b.storeErr("leave "+id, err)
	}
	b.d.log.Info("raft member left", "id", id)
	c, err = b.cluster()
	return api.MembershipResult{Changed: true, Cluster: c}, err
}
