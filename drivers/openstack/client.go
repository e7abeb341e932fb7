package openstack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"
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
func Connect(ctx context.Context, cfg Config) (map[string]Clients, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
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
		c, err := connect(ctx, dc, time.Duration(cfg.RequestTimeout))
		if err != nil {
			return nil, fmt.Errorf("openstack: datacenter %s (cloud %q): %w", name, dc.Cloud, err)
		}
		shared[k] = c
		out[name] = c
	}
	return out, nil
}

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
		return Clients{}, fmt.Errorf("%s: authenticate at %s: %w", IdentityService, ao.IdentityEndpoint, err)
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
