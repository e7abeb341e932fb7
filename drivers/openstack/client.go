package openstack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"

	"github.com/ims-orch/ims-orch/clock"
)

// ComputeMicroversion is the compute API microversion the driver speaks:
// 2.64 is the first with server-group rules (max_server_per_host); it also
// gives tags (2.52) and networks "none"/"auto" (2.37).
const ComputeMicroversion = "2.64"

// Clients are the service clients of one datacenter.
type Clients struct {
	Compute *gophercloud.ServiceClient
	// Image resolves image names to IDs; nil means images must be given as IDs.
	Image *gophercloud.ServiceClient
}

// Connect authenticates once per distinct (cloud, region, CA bundle) of cfg
// and returns the clients of every datacenter. Credentials come from the
// clouds.yaml entry named by DCConfig.Cloud (clouds.yaml is found where the
// OpenStack CLI finds it: OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
// ~/.config/openstack, /etc/openstack), else from OS_CLOUD, else from the
// OS_* variables. Tokens are renewed when they expire.
//
// A transient failure of the identity service (Keystone) — its version
// discovery or token request answered 5xx, 429 or 409, a connection
// refused or reset, no answer within Config.RequestTimeout — is retried
// as every request of the driver is: at most Config.Retries times, waiting
// RetryBase·2ⁿ (at most 30 s) on clk (nil: the wall clock) in between,
// until ctx ends. So a daemon started while Keystone restarts comes up
// once Keystone answers. Credentials Keystone refuses (401, 403) and a
// bad configuration (an unknown cloud, a CA bundle that cannot be read, a
// region without a compute endpoint, a certificate the CA bundle does not
// verify, a host DNS does not know, a URL the HTTP client cannot use) fail
// at once. The error names the
// datacenter, the service and Keystone's answer.
func Connect(ctx context.Context, cfg Config, clk clock.Clock) (map[string]Clients, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real{}
	}
	type key struct{ cloud, region, ca string }
	shared := map[key]Clients{}
	out := map[string]Clients{}
	for _, name := range sortedKeys(cfg.DCs) {
		dc := cfg.DCs[name]
		k := key{dc.Cloud, dc.Region, dc.CACert}
		if c, ok := shared[k]; ok {
			out[name] = c
			continue
		}
		var c Clients
		err := retryOn(ctx, clk, time.Duration(cfg.RetryBase), "connect", cfg.Retries, func() (err error) {
			c, err = connect(ctx, dc, time.Duration(cfg.RequestTimeout))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("openstack: datacenter %s (cloud %q): %w", name, dc.Cloud, err)
		}
		shared[k] = c
		out[name] = c
	}
	return out, nil
}

// connect authenticates one datacenter's cloud once; a failure of
// Keystone's is classified (errTransient when worth another attempt).
func connect(ctx context.Context, dc DCConfig, timeout time.Duration) (Clients, error) {
	opts := &clientconfig.ClientOpts{Cloud: dc.Cloud, RegionName: dc.Region}
	cloud := new(clientconfig.Cloud)
	if dc.Cloud != "" || envCloud() != "" {
		c, err := clientconfig.GetCloudFromYAML(opts)
		if err != nil {
			return Clients{}, err
		}
		cloud = c
	}
	if dc.CACert != "" {
		cloud.CACertFile = dc.CACert
	}
	tlsConfig, err := clientconfig.PrepareTLSConfig("OS_", cloud)
	if err != nil {
		return Clients{}, fmt.Errorf("CA bundle / client certificate: %w", err)
	}
	ao, err := clientconfig.AuthOptions(opts)
	if err != nil {
		return Clients{}, err
	}
	ao.AllowReauth = true
	provider, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return Clients{}, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	provider.HTTPClient = http.Client{Transport: transport, Timeout: timeout}
	if err := openstack.Authenticate(ctx, provider, *ao); err != nil {
		transport.CloseIdleConnections() // Connect's next attempt makes its own
		// transient (errTransient: retried by Connect) or not, by
		// Keystone's answer, as every request's error
		return Clients{}, classify(fmt.Sprintf("%s: authenticate at %s", IdentityService, ao.IdentityEndpoint), err)
	}
	region := dc.Region
	if region == "" {
		region = cloud.RegionName
	}
	if region == "" {
		region = getenv("OS_REGION_NAME")
	}
	eo := gophercloud.EndpointOpts{Region: region}
	compute, err := openstack.NewComputeV2(provider, eo)
	if err != nil {
		return Clients{}, fmt.Errorf("compute endpoint (region %q): %w", region, err)
	}
	compute.Microversion = ComputeMicroversion
	image, err := openstack.NewImageV2(provider, eo)
	if err != nil {
		image = nil // images must then be given as IDs
	}
	return Clients{Compute: compute, Image: image}, nil
}
