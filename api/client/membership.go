package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ims-orch/ims-orch/api"
)

// Cluster returns the raft membership as the node reached sees it.
func (c *Client) Cluster(ctx context.Context) (api.Cluster, error) {
	var out api.Cluster
	_, err := c.do(ctx, http.MethodGet, api.Prefix+"/cluster", nil, nil, &out)
	return out, err
}

// Join adds a raft voter (the node reached forwards it to the leader); a
// 409 ProblemError says it would lose quorum.
func (c *Client) Join(ctx context.Context, req api.JoinRequest) (api.MembershipResult, error) {
	var out api.MembershipResult
	_, err := c.do(ctx, http.MethodPost, api.Prefix+"/cluster/members", nil, req, &out)
	return out, err
}

// Leave removes a raft member; 404 when id is not one, 409 when removing
// it would lose quorum.
func (c *Client) Leave(ctx context.Context, id string) (api.MembershipResult, error) {
	var out api.MembershipResult
	_, err := c.do(ctx, http.MethodDelete, api.Prefix+"/cluster/members/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}
