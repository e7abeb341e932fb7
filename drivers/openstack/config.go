package openstack

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Config is the `openstack:` section of the ims-orch configuration: how each
// datacenter maps onto a cloud (clouds.yaml entry), region and availability
// zone, what its instances boot from, and how N+k pools are spread.
//
//	openstack:
//	  poll_interval: 2s
//	  datacenters:
//	    dc-a: {cloud: prod, region: RegionOne, availability_zone: az-a,
//	           image: tiny, flavor: m1.tiny, networks: [none]}
//	  anti_affinity: {max_per_host: 2}
//	  pools:
//	    pcscf: {max_per_host: 1}
//	    scscf: {soft: true}
type Config struct {
	// DCs maps an ims-orch datacenter name to its place in a cloud.
	DCs map[string]DCConfig `yaml:"datacenters"`
	// AntiAffinity is the default N+k spreading of every pool.
	AntiAffinity AntiAffinity `yaml:"anti_affinity"`
	// Pools overrides AntiAffinity per pool name (Spec.Pool, or Spec.VNF when
	// Spec.Pool is empty).
	Pools map[string]AntiAffinity `yaml:"pools"`

	// PollInterval is how often Subscribe's poller lists servers (default 2s).
	PollInterval Duration `yaml:"poll_interval"`
	// ActiveTimeout bounds the wait for a server to become ACTIVE (default 5m).
	ActiveTimeout Duration `yaml:"active_timeout"`
	// RequestTimeout bounds one HTTP request to the cloud (default 30s).
	RequestTimeout Duration `yaml:"request_timeout"`
	// Retries is how many times a request failing with 5xx, 429 or a network
	// error is retried, with exponential backoff from RetryBase (default 5, 500ms).
	Retries   int      `yaml:"retries"`
	RetryBase Duration `yaml:"retry_base"`
	// Rebuilds is how many times a server that went to ERROR (other than "No
	// valid host") is deleted and launched again before giving up (default 2).
	Rebuilds int `yaml:"rebuilds"`
	// Parallelism bounds concurrent launches in Fill and Reconcile (default 10).
	Parallelism int `yaml:"parallelism"`
	// OrphanGrace is how long a server of ours that nobody wants survives
	// before Reconcile deletes it (default 2m), and how long an older
	// server of an instance id (a newer one carries it too) survives
	// before Reconcile deletes it (ActSurplus; the node's own DCs only).
	OrphanGrace Duration `yaml:"orphan_grace"`
	// ReconcileInterval is how often the daemon runs the Reconciler (orphans
	// deleted after OrphanGrace, vanished or ERROR servers handed back to
	// their controller, empty server groups deleted); default 30s.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// ServerMetadata is set on every server the driver creates, beside
	// the drivers.Meta* keys (a label for people; the real-Nova tests'
	// run id, which scopes their clean-up). It does not change which
	// servers are ours: two deployments in one project need distinct DC
	// names. Validated as Nova's server create does: keys of
	// metadataKeyPattern, not starting with "ims-orch." in any case
	// (ours), values of at most 255 characters, at most 123 keys (Nova's
	// default metadata_items quota, 128, less our 5); a Spec.Metadata
	// key overrides it.
	ServerMetadata map[string]string `yaml:"server_metadata"`
}

// DCConfig places one datacenter in a cloud.
type DCConfig struct {
	// Cloud names the clouds.yaml entry; empty means OS_CLOUD or the OS_*
	// environment variables, as the OpenStack CLI does.
	Cloud string `yaml:"cloud"`
	// Region overrides the cloud entry's region_name.
	Region string `yaml:"region"`
	// AvailabilityZone is where this DC's servers boot ("" = Nova's default).
	AvailabilityZone string `yaml:"availability_zone"`
	// CACert is a CA bundle file that overrides the cloud entry's cacert.
	CACert string `yaml:"cacert"`
	// Image, Flavor (names or IDs), Networks (UUIDs, or the single word
	// "none" or "auto") and KeyName are defaults for specs that leave them empty.
	Image    string   `yaml:"image"`
	Flavor   string   `yaml:"flavor"`
	Networks []string `yaml:"networks"`
	KeyName  string   `yaml:"key_name"`
	// ControllerAddress and ControllerToken are handed to each instance's
	// statistics agent through user data when a spec carries none.
	ControllerAddress string `yaml:"controller_address"`
	ControllerToken   string `yaml:"controller_token"`
}

// AntiAffinity is how one N+k pool is spread over hosts: at most
// MaxPerHost members on one host (hard "anti-affinity" server group with the
// max_server_per_host rule, compute microversion 2.64), or, when Soft, a
// "soft-anti-affinity" group (spread as well as possible, never refused).
type AntiAffinity struct {
	MaxPerHost int  `yaml:"max_per_host"`
	Soft       bool `yaml:"soft"`
}

// Duration is a time.Duration written as "2s" or "1m30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"2s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// Defaults used when a Config leaves a field at zero.
const (
	DefaultPollInterval   = 2 * time.Second
	DefaultActiveTimeout  = 5 * time.Minute
	DefaultRequestTimeout = 30 * time.Second
	DefaultRetries        = 5
	DefaultRetryBase      = 500 * time.Millisecond
	DefaultRebuilds       = 2
	DefaultParallelism    = 10
	DefaultOrphanGrace    = 2 * time.Minute
	// DefaultReconcileInterval: a vanished server the poller missed, an
	// orphan and an empty group are dealt with within half a minute.
	DefaultReconcileInterval = 30 * time.Second
	DefaultMaxPerHost        = 1
)

// ParseConfig reads the openstack section from YAML (unknown fields are
// errors), fills defaults and validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("openstack config: %w", err)
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) withDefaults() Config {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.ActiveTimeout, DefaultActiveTimeout)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.RetryBase, DefaultRetryBase)
	def(&c.OrphanGrace, DefaultOrphanGrace)
	def(&c.ReconcileInterval, DefaultReconcileInterval)
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Rebuilds == 0 {
		c.Rebuilds = DefaultRebuilds
	}
	if c.Parallelism == 0 {
		c.Parallelism = DefaultParallelism
	}
	if c.AntiAffinity.MaxPerHost == 0 && !c.AntiAffinity.Soft {
		c.AntiAffinity.MaxPerHost = DefaultMaxPerHost
	}
	return c
}

// ownMetadataPrefix starts the metadata keys ims-orch sets (drivers.Meta*,
// ownMetadataKeys of them on every server); Nova's server-create schema
// allows metadata keys of metadataKeyPattern and values of at most
// maxMetadataLen characters, and its metadata_items quota (default
// novaMetadataItems) counts every key of a server.
const (
	ownMetadataPrefix = "ims-orch."
	ownMetadataKeys   = 5
	maxMetadataLen    = 255
	novaMetadataItems = 128
)

// metadataKeyPattern is Nova's pattern of a metadata key
// (nova/api/validation/parameter_types.py, metadata).
var metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_:. -]{1,255}$`)

// namePattern is what ims-orch accepts as a DC, pool or instance id: it goes
// into server and server-group names and into a name regex filter.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate reports the first problem, naming the field.
func (c Config) Validate() error {
	if len(c.DCs) == 0 {
		return errors.New("openstack config: datacenters: at least one datacenter is required")
	}
	for _, name := range sortedKeys(c.DCs) {
		dc := c.DCs[name]
		f := "openstack config: datacenters." + name
		if !namePattern.MatchString(name) {
			return fmt.Errorf("%s: name must match %s", f, namePattern)
		}
		if len(dc.Networks) > 1 {
			for _, n := range dc.Networks {
				if n == "none" || n == "auto" {
					return fmt.Errorf("%s.networks: %q must be the only entry", f, n)
				}
			}
		}
		if (dc.ControllerAddress == "") != (dc.ControllerToken == "") {
			return fmt.Errorf("%s: controller_address and controller_token go together", f)
		}
	}
	if n := len(c.ServerMetadata); n > novaMetadataItems-ownMetadataKeys {
		return fmt.Errorf("openstack config: server_metadata: %d keys, at most %d: Nova's default metadata_items quota (%d) counts every key of a server, ims-orch's own %d and a spec's included",
			n, novaMetadataItems-ownMetadataKeys, novaMetadataItems, ownMetadataKeys)
	}
	for _, k := range sortedKeys(c.ServerMetadata) {
		f := fmt.Sprintf("openstack config: server_metadata.%q", k)
		switch v := c.ServerMetadata[k]; {
		case !metadataKeyPattern.MatchString(k):
			return fmt.Errorf("%s: key must match %s (Nova's metadata key: 1 to %d letters, digits, _ : . - or space)", f, metadataKeyPattern, maxMetadataLen)
		case strings.HasPrefix(strings.ToLower(k), ownMetadataPrefix):
			return fmt.Errorf("%s: keys starting with %q (in any case) are ims-orch's own (drivers.Meta*)", f, ownMetadataPrefix)
		case !utf8.ValidString(v):
			return fmt.Errorf("%s: value is not valid UTF-8", f)
		case utf8.RuneCountInString(v) > maxMetadataLen:
			return fmt.Errorf("%s: value must be at most %d characters (Nova's limit), got %d", f, maxMetadataLen, utf8.RuneCountInString(v))
		}
	}
	if err := c.AntiAffinity.validate("openstack config: anti_affinity"); err != nil {
		return err
	}
	for _, name := range sortedKeys(c.Pools) {
		if !namePattern.MatchString(name) {
			return fmt.Errorf("openstack config: pools.%s: name must match %s", name, namePattern)
		}
		if err := c.Pools[name].validate("openstack config: pools." + name); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"poll_interval", c.PollInterval}, {"active_timeout", c.ActiveTimeout},
		{"request_timeout", c.RequestTimeout}, {"retry_base", c.RetryBase}, {"orphan_grace", c.OrphanGrace},
		{"reconcile_interval", c.ReconcileInterval}} {
		if d.v < 0 {
			return fmt.Errorf("openstack config: %s: must not be negative, got %s", d.name, time.Duration(d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"retries", c.Retries}, {"rebuilds", c.Rebuilds}, {"parallelism", c.Parallelism}} {
		if n.v < 0 || n.v > 1000 {
			return fmt.Errorf("openstack config: %s: must be between 0 and 1000, got %d", n.name, n.v)
		}
	}
	return nil
}

func (a AntiAffinity) validate(field string) error {
	if a.Soft && a.MaxPerHost != 0 {
		return fmt.Errorf("%s: max_per_host applies to hard anti-affinity only (Nova refuses rules on soft-anti-affinity groups)", field)
	}
	if a.MaxPerHost < 0 || a.MaxPerHost > 1000 {
		return fmt.Errorf("%s.max_per_host: must be between 1 and 1000, got %d", field, a.MaxPerHost)
	}
	return nil
}

// spreading returns the anti-affinity of a pool.
func (c Config) spreading(pool string) AntiAffinity {
	a, ok := c.Pools[pool]
	if !ok {
		a = c.AntiAffinity
	}
	if !a.Soft && a.MaxPerHost == 0 {
		a.MaxPerHost = DefaultMaxPerHost
	}
	return a
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
