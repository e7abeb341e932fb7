package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/client"
)

// Daemon is what the operator asks one ims-orch pod's API.
type Daemon interface {
	Cluster(ctx context.Context) (api.Cluster, error)
	Join(ctx context.Context, req api.JoinRequest) (api.MembershipResult, error)
	Leave(ctx context.Context, id string) (api.MembershipResult, error)
	State(ctx context.Context) (api.State, error)
}

// DaemonDialer returns a client of the API at baseURL that sends token and
// trusts caPEM.
type DaemonDialer func(baseURL, token string, caPEM []byte) (Daemon, error)

// DialDaemon is the DaemonDialer over HTTPS (api/client).
func DialDaemon(baseURL, token string, caPEM []byte) (Daemon, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ca.crt of the API TLS Secret holds no PEM certificate")
	}
	return client.New(baseURL, client.WithToken(token), client.WithTimeout(10*time.Second),
		client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
}
