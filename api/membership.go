package api

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Raft membership of the global controller: list the members, add a voter
// (join) or remove one (leave). Joins and leaves are writes: a follower
// forwards them to the leader like any other write, and the leader refuses
// one that would leave the cluster without a quorum of reachable voters.

// Member suffrages (hashicorp/raft's).
const (
	SuffrageVoter    = "voter"
	SuffrageNonvoter = "nonvoter"
)

// Contact of the leader with a member, as the leader last saw it.
const (
	ContactLeader  = "leader"  // the member is the leader itself
	ContactOK      = "ok"      // its last heartbeat from the leader succeeded
	ContactFailing = "failing" // its last heartbeat failed
	ContactUnknown = "unknown" // this node is not the leader
)

// Member is one server of the raft configuration.
type Member struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raftAddress"`
	Suffrage    string `json:"suffrage"`
	Contact     string `json:"contact"`
}

// Cluster is the raft configuration as one node sees it.
type Cluster struct {
	// Leader is the leader's node ID ("" when none is known).
	Leader string `json:"leader"`
	// Voters counts the voting members; Quorum is how many of them a
	// commit needs (Voters/2 + 1).
	Voters  int      `json:"voters"`
	Quorum  int      `json:"quorum"`
	Members []Member `json:"members"`
}

// JoinRequest adds a voter.
type JoinRequest struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raftAddress"`
}

// Validate checks the fields of a join request.
func (j JoinRequest) Validate() error {
	var v ValidationError
	if !nameRE.MatchString(j.ID) {
		v.Add("id", "%q %s", truncate(j.ID), nameRule)
	}
	if host, port, err := net.SplitHostPort(j.RaftAddress); err != nil || host == "" || port == "" {
		v.Add("raftAddress", "%q must be host:port", truncate(j.RaftAddress))
	}
	return v.Err()
}

// MembershipResult answers a join or a leave: whether it changed the
// configuration and the cluster afterwards.
type MembershipResult struct {
	Changed bool    `json:"changed"`
	Cluster Cluster `json:"cluster"`
}

// MembershipBackend is implemented by a Backend that runs raft. The server
// answers 501 on the membership routes when its Backend does not.
//
// Join and Leave return *NotLeaderError on a follower, an error wrapping
// ErrConflict when the change would lose quorum (or the node runs without
// raft), ErrNotFound when Leave names no member, *ValidationError on bad
// input.
type MembershipBackend interface {
	Cluster(ctx context.Context) (Cluster, error)
	Join(ctx context.Context, req JoinRequest) (MembershipResult, error)
	Leave(ctx context.Context, id string) (MembershipResult, error)
}

// QuorumOf is how many voters of n a raft commit needs.
func QuorumOf(n int) int { return n/2 + 1 }

func (s *Server) membershipRoutes(r chi.Router) {
	r.Get(Prefix+"/cluster", s.getCluster)
	r.Post(Prefix+"/cluster/members", s.joinMember)
	r.Delete(Prefix+"/cluster/members/{id}", s.leaveMember)
}

func (s *Server) membership(w http.ResponseWriter, r *http.Request) (MembershipBackend, bool) {
	mb, ok := s.cfg.Backend.(MembershipBackend)
	if !ok {
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusNotImplemented,
			Detail: "this server's backend has no raft membership"})
	}
	return mb, ok
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.membership(w, r)
	if !ok {
		return
	}
	c, err := mb.Cluster(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) joinMember(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.membership(w, r)
	if !ok {
		return
	}
	var in JoinRequest
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	res, err := mb.Join(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) leaveMember(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.membership(w, r)
	if !ok {
		return
	}
	id, ok := pathName(w, r, "id")
	if !ok {
		return
	}
	res, err := mb.Leave(r.Context(), id)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ErrQuorum wraps ErrConflict: a membership change that would leave fewer
// reachable voters than the new configuration's quorum.
var ErrQuorum = fmt.Errorf("%w: the change would lose quorum", ErrConflict)

// CheckJoin decides whether adding a voter keeps quorum: the voters the
// leader reaches now (itself included) plus the joiner must be a quorum of
// the grown configuration. voters and reachable are counts before the change.
func CheckJoin(voters, reachable int) error {
	if need := QuorumOf(voters + 1); reachable+1 < need {
		return fmt.Errorf("%w: %d of %d voters reachable, %d voters would need %d", ErrQuorum, reachable, voters, voters+1, need)
	}
	return nil
}

// CheckLeave decides whether removing one voter keeps quorum: the reachable
// voters that stay must be a quorum of the shrunk configuration, and at least
// one voter must stay. leavingReachable says whether the leaving voter is
// among the reachable ones.
func CheckLeave(voters, reachable int, leavingReachable bool) error {
	if voters <= 1 {
		return fmt.Errorf("%w: the last voter cannot leave", ErrQuorum)
	}
	stay := reachable
	if leavingReachable {
		stay--
	}
	if need := QuorumOf(voters - 1); stay < need {
		return fmt.Errorf("%w: %d reachable voters would stay, %d voters need %d", ErrQuorum, stay, voters-1, need)
	}
	return nil
}
