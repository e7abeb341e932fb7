package openstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Tag is set on every server of ours so List asks Nova for ours only.
const Tag = "ims-orch"

// managedBy is the value of drivers.MetaManagedBy on our servers.
const managedBy = drivers.ManagedBy

// Driver is the OpenStack drivers.Driver.
type Driver struct {
	cfg     Config
	clients map[string]Clients
	clk     clock.Clock

	mu      sync.Mutex
	groups  map[string]string // group name -> server group id
	groupMu sync.Mutex        // serialises server group look-up/creation
	// groupUse: a launch holds it shared from its group look-up until its
	// create returns; DeleteEmptyGroups holds it exclusively, so it never
	// deletes a group a create is about to name, and every server created
	// before it is in its server list
	groupUse sync.RWMutex
	snaps    snapshots // shared lists for look-ups and waits
	lanes    map[string]*sync.Mutex
	idLocks  keyLocks
	images   map[string]string // DC/name -> image id
	flavors  map[string]string // DC/name -> flavor id
	poller   *poller
	closed   bool
	handlers map[int]drivers.EventHandler
	nextH    int

	flavorSizes map[string]flavorSize // DC/name -> vCPUs and RAM (quota.go)
	quotaHits   drivers.QuotaHits     // flavors whose last launch hit the quota

	tombs    tombstones   // servers Terminate deleted (tombstone.go)
	delFails delBackoffs  // servers whose delete failed (delbackoff.go)
	log      *slog.Logger // nil: slog.Default()
	// lastLists: per compute client, the last List's servers, for
	// ReissueDeletes (under mu)
	lastLists map[*gophercloud.ServiceClient]listSnap
	// launches: per "dc/id", the launches of this driver a List may not
	// show yet (allInBackoff; under mu)
	launches map[string]*launchMark

	terminateFailures atomic.Uint64   // Terminate calls that returned an error (Stats)
	dups              map[string]int  // DC -> surplus servers per instance id in its last List (under mu)
	dupWarned         map[string]bool // Nova ids of surplus servers pick warned about (under mu)
	surplusDeleted    atomic.Uint64   // surplus servers DeleteSurplus deleted (Stats)
}

var _ drivers.Driver = (*Driver)(nil)

// New returns a driver over already connected clients (see Connect), one per
// datacenter of cfg. clk runs the backoff waits and the Subscribe poller.
func New(cfg Config, clients map[string]Clients, clk clock.Clock) (*Driver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, dc := range sortedKeys(cfg.DCs) {
		c, ok := clients[dc]
		if !ok || c.Compute == nil {
			return nil, fmt.Errorf("openstack: datacenter %s: no compute client", dc)
		}
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Driver{cfg: cfg, clients: clients, clk: clk,
		groups: map[string]string{}, images: map[string]string{}, flavors: map[string]string{},
		lanes:    map[string]*sync.Mutex{},
		handlers: map[int]drivers.EventHandler{}, flavorSizes: map[string]flavorSize{}}, nil
}

// SetLogger sets where the driver logs (default slog.Default()); call it
// before the driver is used.
func (d *Driver) SetLogger(l *slog.Logger) { d.log = l }

func (d *Driver) logger() *slog.Logger {
	if d.log == nil {
		return slog.Default()
	}
	return d.log
}

// Config returns the configuration with defaults filled in.
func (d *Driver) Config() Config { return d.cfg }

func (d *Driver) compute(dc string) (*gophercloud.ServiceClient, error) {
	c, ok := d.clients[dc]
	if !ok {
		return nil, fmt.Errorf("openstack: datacenter %q: %w: not in the openstack configuration", dc, drivers.ErrInvalid)
	}
	return c.Compute, nil
}

// sleep waits d on the driver's clock, or until ctx ends.
func (d *Driver) sleep(ctx context.Context, wait time.Duration) error {
	return clock.Sleep(ctx, d.clk, wait)
}

// backoff returns the wait before retry attempt n (0-based): base·2ⁿ, at most 30 s.
func backoff(base time.Duration, n int) time.Duration { return backoffN(base, 30*time.Second, n) }

// backoffN is base·2ⁿ, at most limit.
func backoffN(base, limit time.Duration, n int) time.Duration {
	w := base
	for i := 0; i < n && w < limit; i++ {
		w *= 2
	}
	return min(w, limit)
}

// retry runs fn until it succeeds, fails with a non-transient error or the
// retry budget is spent, waiting with exponential backoff in between.
func (d *Driver) retry(ctx context.Context, op string, fn func() error) error {
	return d.retryN(ctx, op, d.cfg.Retries, fn)
}

func (d *Driver) retryN(ctx context.Context, op string, retries int, fn func() error) error {
	return retryOn(ctx, d.clk, time.Duration(d.cfg.RetryBase), op, retries, fn)
}

// retryOn is the driver's retry policy on clk: fn again after a transient
// error (errTransient) at most retries times, waiting backoff(base, n)
// before retry n, until ctx ends. Connect uses it before there is a Driver.
func retryOn(ctx context.Context, clk clock.Clock, base time.Duration, op string, retries int, fn func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = fn()
		if err == nil || !errors.Is(err, errTransient) || attempt >= retries {
			break
		}
		if ctx.Err() != nil { // the caller gave up: not the cloud's fault, stop
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), err)
		}
		if serr := clock.Sleep(ctx, clk, backoff(base, attempt)); serr != nil {
			return fmt.Errorf("%s: %w (last error: %v)", op, serr, err)
		}
	}
	if err != nil && errors.Is(err, errTransient) {
		return fmt.Errorf("%s: gave up after %d retries: %w", op, retries, err)
	}
	return err
}

// ---------------------------------------------------------------- Launch

func validateSpec(spec drivers.Spec) error {
	if !namePattern.MatchString(spec.ID) {
		return fmt.Errorf("openstack: spec.ID %q: %w: must match %s", spec.ID, drivers.ErrInvalid, namePattern)
	}
	if !namePattern.MatchString(spec.VNF) {
		return fmt.Errorf("openstack: spec.VNF %q: %w: must match %s", spec.VNF, drivers.ErrInvalid, namePattern)
	}
	if spec.Pool != "" && !namePattern.MatchString(spec.Pool) {
		return fmt.Errorf("openstack: spec.Pool %q: %w: must match %s", spec.Pool, drivers.ErrInvalid, namePattern)
	}
	return nil
}

// poolName is the pool of a spec: Spec.Pool, or the VNF.
func poolName(spec drivers.Spec) string {
	if spec.Pool != "" {
		return spec.Pool
	}
	return spec.VNF
}

// GroupName is the server group of one pool in one datacenter.
func GroupName(dc, pool string) string { return "ims-orch." + dc + "." + pool }

// Launch starts a server for spec and returns once Nova has accepted it.
// It is idempotent on spec.ID: a server of ours with that id (found in a
// list of our servers started after the call, by metadata) is returned
// instead of creating a second one — also between the retries of a create
// that failed with 5xx or a timeout, and between concurrent calls.
func (d *Driver) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	in, _, err := d.launch(ctx, spec, true)
	return in, err
}

// LaunchNew is Launch for a caller that has just listed our servers and
// knows spec.ID absent (the Reconciler): the first create skips the look-up;
// a retry after an uncertain failure (5xx, timeout) still looks up first, so
// it stays idempotent.
func (d *Driver) LaunchNew(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	in, _, err := d.launch(ctx, spec, false)
	return in, err
}

// launch is Launch and LaunchNew; it also returns the server as it knows
// it: as the look-up's list showed it, or as Nova took the create (BUILD),
// so that a wait for ACTIVE need not list again at once (waitActive).
func (d *Driver) launch(ctx context.Context, spec drivers.Spec, lookFirst bool) (drivers.Instance, servers.Server, error) {
	if err := validateSpec(spec); err != nil {
		return drivers.Instance{}, servers.Server{}, err
	}
	client, err := d.compute(spec.DC)
	if err != nil {
		return drivers.Instance{}, servers.Server{}, err
	}
	opts, err := d.createOpts(ctx, spec)
	if err != nil {
		return drivers.Instance{}, servers.Server{}, err
	}
	d.groupUse.RLock()
	defer d.groupUse.RUnlock()
	groupID, err := d.ensureGroup(ctx, spec.DC, poolName(spec))
	if err != nil {
		return drivers.Instance{}, servers.Server{}, err
	}
	// one look-up-then-create per instance id at a time in this process; the
	// look-up makes it idempotent across retries and restarts
	unlock := d.idLocks.lock(key(spec.DC, spec.ID))
	defer unlock()
	returned := d.launchBegun(spec.DC, spec.ID)
	var (
		inst drivers.Instance
		seen servers.Server
		// unsure: a create went without a definite answer (mayCommitLater)
		unsure bool
	)
	defer func() { returned(err != nil && unsure) }() // err: the launch's, below
	attempt := 0
	err = d.retry(ctx, "launch "+spec.ID, func() error {
		attempt++
		if lookFirst || attempt > 1 {
			found, ok, err := d.find(ctx, spec.DC, spec.ID)
			if err != nil {
				return err
			}
			if ok {
				inst, seen = toInstance(found), found
				return nil
			}
		}
		s, err := servers.Create(ctx, client, d.withKey(spec, opts), servers.SchedulerHintOpts{Group: groupID}).Extract()
		if err != nil {
			err = classify("create server "+spec.ID, err)
			unsure = unsure || mayCommitLater(err)
			return err
		}
		inst = drivers.Instance{ID: spec.ID, CloudID: s.ID, DC: spec.DC, VNF: spec.VNF, Pool: spec.Pool,
			State: drivers.StateBooting, Created: d.clk.Now(), Metadata: opts.Metadata}
		seen = servers.Server{ID: s.ID, Name: spec.ID, Status: "BUILD", Created: inst.Created, Metadata: opts.Metadata}
		return nil
	})
	d.quotaHits.Launched(spec.DC, d.flavorOf(spec.DC, spec), err)
	return inst, seen, err
}

func (d *Driver) createOpts(ctx context.Context, spec drivers.Spec) (servers.CreateOpts, error) {
	dc := d.cfg.DCs[spec.DC]
	image := firstNonEmpty(spec.Image, dc.Image)
	flavor := d.flavorOf(spec.DC, spec)
	if image == "" {
		return servers.CreateOpts{}, fmt.Errorf("openstack: spec %s: image: %w: empty in the spec and in datacenters.%s", spec.ID, drivers.ErrInvalid, spec.DC)
	}
	if flavor == "" {
		return servers.CreateOpts{}, fmt.Errorf("openstack: spec %s: flavor: %w: empty in the spec and in datacenters.%s", spec.ID, drivers.ErrInvalid, spec.DC)
	}
	imageID, err := d.imageID(ctx, spec.DC, image)
	if err != nil {
		return servers.CreateOpts{}, err
	}
	flavorID, err := d.flavorID(ctx, spec.DC, flavor)
	if err != nil {
		return servers.CreateOpts{}, err
	}
	md := spec.CloudMetadata(poolName(spec))
	for k, v := range d.cfg.ServerMetadata {
		if _, ok := md[k]; !ok { // the spec's own, and ours (Meta*), win
			md[k] = v
		}
	}
	userData := spec.UserData
	if userData == nil && dc.ControllerAddress != "" {
		as := AgentSettings{Controller: dc.ControllerAddress, Token: dc.ControllerToken, InstanceID: spec.ID, DC: spec.DC, VNF: spec.VNF}
		if vnf.Same(spec.VNF, vnf.SCSCF) {
			as.KamailioRPC = SCSCFKamailioRPC // issue 14: its CP counters per pair ride on its statistics
		}
		userData = AgentUserData(as)
	}
	opts := servers.CreateOpts{
		Name: spec.ID, ImageRef: imageID, FlavorRef: flavorID, AvailabilityZone: dc.AvailabilityZone,
		Metadata: md, UserData: userData, Tags: []string{Tag},
	}
	nets := spec.Networks
	if len(nets) == 0 {
		nets = dc.Networks
	}
	switch {
	case len(nets) == 1 && (nets[0] == "none" || nets[0] == "auto"):
		opts.Networks = nets[0]
	case len(nets) > 0:
		ns := make([]servers.Network, len(nets))
		for i, n := range nets {
			ns[i] = servers.Network{UUID: n}
		}
		opts.Networks = ns
	}
	return opts, nil
}

// withKey adds the key pair of spec (or of its DC) to the create request.
func (d *Driver) withKey(spec drivers.Spec, opts servers.CreateOpts) servers.CreateOptsBuilder {
	if k := firstNonEmpty(spec.KeyName, d.cfg.DCs[spec.DC].KeyName); k != "" {
		return keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: k}
	}
	return opts
}

// flavorOf is the flavor spec launches with in datacenter dc: its own, else
// the DC's (the quota bookkeeping must name the same one as the launch).
func (d *Driver) flavorOf(dc string, spec drivers.Spec) string {
	return firstNonEmpty(spec.Flavor, d.cfg.DCs[dc].Flavor)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// imageID resolves an image name through Glance (once per DC and name).
func (d *Driver) imageID(ctx context.Context, dc, name string) (string, error) {
	if uuidPattern.MatchString(name) {
		return name, nil
	}
	d.mu.Lock()
	id, ok := d.images[dc+"/"+name]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	ic := d.clients[dc].Image
	if ic == nil {
		return "", fmt.Errorf("openstack: image %q: %w: no image service to resolve names, give an image ID", name, drivers.ErrInvalid)
	}
	err := d.retry(ctx, "resolve image "+name, func() error {
		page, err := images.List(ic, images.ListOpts{Name: name}).AllPages(ctx)
		if err != nil {
			return classify(ImageService+": list images", err)
		}
		all, err := images.ExtractImages(page)
		if err != nil {
			return fmt.Errorf("list images: %w", err)
		}
		if len(all) == 0 {
			return fmt.Errorf("openstack: image %q: %w: no such image", name, drivers.ErrInvalid)
		}
		if len(all) > 1 {
			return fmt.Errorf("openstack: image %q: %w: %d images have this name, give an ID", name, drivers.ErrInvalid, len(all))
		}
		id = all[0].ID
		return nil
	})
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.images[dc+"/"+name] = id
	d.mu.Unlock()
	return id, nil
}

// flavorID resolves a flavor name through Nova (once per DC and name); a
// flavor whose ID equals the name is taken as is.
func (d *Driver) flavorID(ctx context.Context, dc, name string) (string, error) {
	d.mu.Lock()
	id, ok := d.flavors[dc+"/"+name]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	client := d.clients[dc].Compute
	err := d.retry(ctx, "resolve flavor "+name, func() error {
		page, err := flavors.ListDetail(client, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
		if err != nil {
			return classify("list flavors", err)
		}
		all, err := flavors.ExtractFlavors(page)
		if err != nil {
			return fmt.Errorf("list flavors: %w", err)
		}
		for _, f := range all {
			if f.ID == name {
				id = f.ID
				return nil
			}
		}
		for _, f := range all {
			if f.Name == name {
				id = f.ID
				return nil
			}
		}
		return fmt.Errorf("openstack: flavor %q: %w: no flavor with this ID or name", name, drivers.ErrInvalid)
	})
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.flavors[dc+"/"+name] = id
	d.mu.Unlock()
	return id, nil
}

// ensureGroup returns the server group of a pool, creating it if needed.
// It looks the name up first, so a restarted ims-orch reuses its groups; if
// several groups carry the name (made by hand, or by two orchestrators at
// once) the one with most members wins, so a pool stays in one group.
// Look-up and creation are serialised so concurrent launches into a new pool
// create one group.
func (d *Driver) ensureGroup(ctx context.Context, dc, pool string) (string, error) {
	name := GroupName(dc, pool)
	d.mu.Lock()
	id, ok := d.groups[name]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	d.groupMu.Lock()
	defer d.groupMu.Unlock()
	d.mu.Lock()
	id, ok = d.groups[name]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	client := d.clients[dc].Compute
	spread := d.cfg.spreading(pool)
	err := d.retry(ctx, "server group "+name, func() error {
		page, err := servergroups.List(client, nil).AllPages(ctx)
		if err != nil {
			return classify("list server groups", err)
		}
		all, err := servergroups.ExtractServerGroups(page)
		if err != nil {
			return fmt.Errorf("list server groups: %w", err)
		}
		best := -1
		for _, g := range all {
			if g.Name == name && (len(g.Members) > best || len(g.Members) == best && g.ID < id) {
				id, best = g.ID, len(g.Members)
			}
		}
		if best >= 0 {
			return nil
		}
		opts := servergroups.CreateOpts{Name: name, Policy: "soft-anti-affinity"}
		if !spread.Soft {
			opts.Policy = "anti-affinity"
			opts.Rules = &servergroups.Rules{MaxServerPerHost: spread.MaxPerHost}
		}
		g, err := servergroups.Create(ctx, client, opts).Extract()
		if err != nil {
			return classify("create server group "+name, err)
		}
		id = g.ID
		return nil
	})
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.groups[name] = id
	d.mu.Unlock()
	return id, nil
}

// DeleteGroups deletes the server groups of ours (named ims-orch.*) that no
// live server of ours belongs to, in every datacenter (see DeleteEmptyGroups).
func (d *Driver) DeleteGroups(ctx context.Context) error {
	_, err := d.DeleteEmptyGroups(ctx, nil)
	return err
}

// DeleteEmptyGroups deletes the server groups of ours that no live server
// of ours belongs to, in the datacenters dcs (nil: all), and returns the
// names it deleted. Nova's member list can still name deleted servers, so
// members are checked against a fresh list of our servers; a group with a
// live member is kept (a new group would let the pool's old and new members
// share hosts). Launches wait while it runs: a group is never deleted
// between a launch's look-up of it and its create.
func (d *Driver) DeleteEmptyGroups(ctx context.Context, dcs []string) ([]string, error) {
	d.groupUse.Lock()
	defer d.groupUse.Unlock()
	all, err := d.freshServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete server groups: %w", err)
	}
	live := map[string]bool{}
	for _, s := range all {
		if !d.hidden(s) {
			live[s.ID] = true
		}
	}
	mine := func(name string) bool {
		if !strings.HasPrefix(name, "ims-orch.") {
			return false
		}
		if dcs == nil {
			return true
		}
		for _, dc := range dcs {
			if strings.HasPrefix(name, "ims-orch."+dc+".") {
				return true
			}
		}
		return false
	}
	seen := map[*gophercloud.ServiceClient]bool{}
	var (
		errs    []error
		deleted []string
	)
	for _, dc := range sortedKeys(d.clients) {
		client := d.clients[dc].Compute
		if seen[client] {
			continue
		}
		seen[client] = true
		page, err := servergroups.List(client, nil).AllPages(ctx)
		if err != nil {
			errs = append(errs, classify("list server groups", err))
			continue
		}
		groups, err := servergroups.ExtractServerGroups(page)
		if err != nil {
			errs = append(errs, err)
			continue
		}
	group:
		for _, g := range groups {
			if !mine(g.Name) {
				continue
			}
			for _, m := range g.Members {
				if live[m] {
					continue group
				}
			}
			if err := servergroups.Delete(ctx, client, g.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
				errs = append(errs, classify("delete server group "+g.Name, err))
				continue
			}
			deleted = append(deleted, g.Name)
			d.mu.Lock()
			delete(d.groups, g.Name)
			d.mu.Unlock()
		}
	}
	return deleted, errors.Join(errs...)
}

// ---------------------------------------------------------------- lookups

// gone reports servers Nova is deleting: they no longer count as ours
// (nor do servers we deleted that Nova lists again: Driver.hidden).
func gone(s servers.Server) bool {
	return s.Status == "DELETED" || s.Status == "SOFT_DELETED" || s.TaskState == "deleting"
}

// server looks the server with Nova id cloudID up in a fresh list of ours
// (deleting or tombstoned included).
func (d *Driver) server(ctx context.Context, cloudID string) (servers.Server, bool, error) {
	all, err := d.freshServers(ctx)
	if err != nil {
		return servers.Server{}, false, fmt.Errorf("find server %s: %w", cloudID, err)
	}
	for _, s := range all {
		if s.ID == cloudID {
			return s, true, nil
		}
	}
	return servers.Server{}, false, nil
}

// find looks a server of ours up by instance id (its metadata), ignoring
// servers Nova is deleting and terminated ones it lists again (tombstones,
// marks); of several, the newest (newer).
func (d *Driver) find(ctx context.Context, dc, id string) (servers.Server, bool, error) {
	all, err := d.freshServers(ctx)
	if err != nil {
		return servers.Server{}, false, fmt.Errorf("find server %s: %w", id, err)
	}
	s, ok := d.pick(dc, id, d.visible(all))
	return s, ok, nil
}

// pick is the server of ours with instance id in dc among list (Nova's
// deleting ones left out).
func (d *Driver) pick(dc, id string, list []servers.Server) (servers.Server, bool) {
	m := match(list, dc, id, false)
	if len(m) == 0 {
		return servers.Server{}, false
	}
	s := m[len(m)-1]
	if len(m) > 1 && d.newDuplicates(m[:len(m)-1]) {
		d.logger().Warn("openstack: several servers of ours carry one instance id: the newest is taken for it",
			"dc", dc, "instance", id, "server", s.ID, "others", strings.Join(cloudIDs(m[:len(m)-1]), ","))
	}
	return s, true
}

// newDuplicates records the surplus servers of an instance id pick or
// terminateTargets saw and reports whether one of them is new: the warning
// is logged once per surplus server, not at every look-up or Terminate of
// the id (a Terminate is retried every tick while Nova refuses a delete;
// Stats.Duplicates counts them at every List). At most maxTombstones are
// remembered (then the set starts again: a warning repeated, nothing lost).
func (d *Driver) newDuplicates(surplus []servers.Server) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dupWarned == nil || len(d.dupWarned) >= maxTombstones {
		d.dupWarned = map[string]bool{}
	}
	fresh := false
	for _, s := range surplus {
		if !d.dupWarned[s.ID] {
			d.dupWarned[s.ID], fresh = true, true
		}
	}
	return fresh
}

// Several live servers with one instance id: a server a Terminate deleted
// whose mark was lost and which Nova lists again (a phantom, created before
// the relaunch of its id), a create whose answer was lost and that the
// retry's look-up did not see yet, or a copy made outside ims-orch. The
// newest is the instance (Launch adopts it, the Reconciler's Plan keeps
// it, the poller reports it): the one case with a wrong answer, the
// phantom, was created first, and a phantom can list ACTIVE. The others
// are logged and counted (Stats.Duplicates), deleted by Terminate with the
// instance, and by the Reconciler once surplus for its grace (Plan's
// ActSurplus, DeleteSurplus).
//
// Nova renders the creation time to the second, so a phantom created,
// deleted and relaunched within one second ties with its relaunch. Then
// the server less far along its boot is taken as the newer (less time
// since its create): still being scheduled (BUILD, no host) before BUILD
// on a host before any other state — the phantom's race leaves it
// BUILD/networking, BUILD/spawning or ACTIVE, while the relaunch is at
// most a second old. Only then the Nova id (random) decides: both still
// being scheduled, e.g. the mark's gap (docs/openstack.md), is a coin flip.
type age struct {
	created time.Time
	stage   int // 0 BUILD with no host, 1 BUILD on a host, 2 any other state
	id      string
}

// newer reports whether a is taken as created after b.
func newer(a, b age) bool {
	switch {
	case !a.created.Equal(b.created):
		return a.created.After(b.created)
	case a.stage != b.stage:
		return a.stage < b.stage
	}
	return a.id > b.id
}

// ageOf is s's age (newer), read through toInstance so that the look-ups
// (match) and the reconciler's Plan (instanceAge of the listed instances)
// rank the same servers alike: a transitional status (REBOOT, REBUILD,
// MIGRATING, ...) is Booting to both.
func ageOf(s servers.Server) age { return instanceAge(toInstance(s)) }

// instanceAge is in's age (newer): Booting with no host is still being
// scheduled (BUILD, no host), Booting on a host is taken for BUILD on a
// host (so is a transitional status: toState makes it Booting).
func instanceAge(in drivers.Instance) age {
	a := age{created: in.Created, stage: 2, id: in.CloudID}
	if in.State == drivers.StateBooting {
		a.stage = 1
		if in.Host == "" {
			a.stage = 0
		}
	}
	return a
}

func toInstance(s servers.Server) drivers.Instance {
	pool := s.Metadata[drivers.MetaPool]
	if pool == s.Metadata[drivers.MetaVNF] {
		pool = "" // the spec left Pool empty
	}
	host := s.Host
	if host == "" {
		host = s.HostID // non-admin users see an opaque per-project host id
	}
	return drivers.Instance{
		ID: s.Metadata[drivers.MetaID], CloudID: s.ID, DC: s.Metadata[drivers.MetaDC],
		VNF: s.Metadata[drivers.MetaVNF], Pool: pool, State: toState(s), Address: address(s),
		Host: host, Created: s.Created, Metadata: s.Metadata,
	}
}

func toState(s servers.Server) drivers.State {
	switch {
	case gone(s):
		return drivers.StateGone
	case s.Status == "ACTIVE":
		return drivers.StateActive
	case s.Status == "BUILD":
		return drivers.StateBooting
	case s.Status == "ERROR", s.Status == "SHUTOFF", s.Status == "SUSPENDED", s.Status == "PAUSED",
		s.Status == "SHELVED", s.Status == "SHELVED_OFFLOADED", s.Status == "STOPPED":
		return drivers.StateError // not serving: the controller replaces it
	default:
		return drivers.StateBooting // transitional: REBOOT, REBUILD, MIGRATING, ...
	}
}

// address returns the first fixed IPv4 address, or the first address.
func address(s servers.Server) string {
	first := ""
	for _, net := range sortedKeys(s.Addresses) {
		list, _ := s.Addresses[net].([]any)
		for _, a := range list {
			m, _ := a.(map[string]any)
			addr, _ := m["addr"].(string)
			if addr == "" {
				continue
			}
			if first == "" {
				first = addr
			}
			if v, _ := m["version"].(float64); v == 4 {
				return addr
			}
		}
	}
	if first == "" {
		first = s.AccessIPv4
	}
	return first
}

// List returns the servers of ours in dc ("" = every configured DC),
// without those Nova is deleting or that were terminated (tombstone.go).
// Ours: tag ims-orch and managed-by metadata. List only reads: a
// terminated server Nova lists again, not deleting, is deleted again by
// ReissueDeletes (the Reconciler's pass of its DCs) and WaitGone, from
// what List saw.
func (d *Driver) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	return d.list(ctx, dc, d.cfg.Retries)
}

// list is List with a retry budget of its own (the poller uses none: its
// next tick is the retry).
func (d *Driver) list(ctx context.Context, dc string, retries int) ([]drivers.Instance, error) {
	dcs := sortedKeys(d.clients)
	if dc != "" {
		if _, err := d.compute(dc); err != nil {
			return nil, err
		}
		dcs = []string{dc}
	}
	want := map[string]bool{}
	for _, n := range dcs {
		want[n] = true
	}
	seen := map[*gophercloud.ServiceClient]bool{}
	var out []drivers.Instance
	for _, n := range dcs {
		client := d.clients[n].Compute
		if seen[client] {
			continue // DCs that are AZs of one cloud share one list
		}
		seen[client] = true
		var (
			all    []servers.Server
			listed time.Time
		)
		err := d.retryN(ctx, "list servers", retries, func() error {
			listed = d.clk.Now()
			page, err := servers.List(client, servers.ListOpts{Tags: Tag}).AllPages(ctx)
			if err != nil {
				return classify("list servers", err)
			}
			all, err = servers.ExtractServers(page)
			return err
		})
		if err != nil {
			return nil, err
		}
		d.seen(client, all, listed)
		for _, s := range all {
			if s.Metadata[drivers.MetaManagedBy] != managedBy || !want[s.Metadata[drivers.MetaDC]] || d.hidden(s) {
				continue
			}
			if d.clients[s.Metadata[drivers.MetaDC]].Compute != client {
				continue // tagged for a DC that lives in another cloud/region
			}
			out = append(out, toInstance(s))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].CloudID < out[j].CloudID
	})
	d.countDuplicates(dcs, out)
	return out, nil
}

// listSnap is what one list of a compute client showed, and when it was
// asked for.
type listSnap struct {
	servers []servers.Server
	listed  time.Time
}

// seen records what a list of client asked for at listed showed: the
// tombstones' sightings, the end of the delete backoff of servers no
// longer listed, and the list itself for ReissueDeletes.
func (d *Driver) seen(client *gophercloud.ServiceClient, all []servers.Server, listed time.Time) {
	d.tombs.sighted(all, d.clk.Now())
	d.pruneDelFails(client, all, listed)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastLists == nil {
		d.lastLists = map[*gophercloud.ServiceClient]listSnap{}
	}
	if old, ok := d.lastLists[client]; !ok || !listed.Before(old.listed) {
		d.lastLists[client] = listSnap{servers: all, listed: listed}
	}
	d.pruneLaunches(client, listed)
}

// pruneLaunches forgets the launches a list of client asked for at listed
// shows (caller holds d.mu).
func (d *Driver) pruneLaunches(client *gophercloud.ServiceClient, listed time.Time) {
	for k, lm := range d.launches {
		if d.clients[lm.dc].Compute == client && lm.shownBy(listed) {
			delete(d.launches, k)
		}
	}
}

// launchMark is the launches of one instance id by this driver that a List
// may not show yet: those running, and when the last one returned.
type launchMark struct {
	dc       string
	running  int
	returned time.Time
}

// shownBy reports whether a list asked for at listed shows every server
// these launches created: none runs and the last returned before the list
// was asked for (Nova took the create before it answered).
func (lm *launchMark) shownBy(listed time.Time) bool {
	return lm.running == 0 && listed.After(lm.returned)
}

// mayCommitLater reports whether a create that failed with err (classify)
// may still be taken by Nova after the driver gave up on it: no definite
// answer (a timeout, a 5xx, a reset: Nova may still be handling it) or
// the caller's context ended mid-request. A create Nova refused with 401
// whose re-authentication failed (errTokenRefused) is a definite answer:
// Nova did nothing, and nothing was re-sent.
func mayCommitLater(err error) bool {
	if errors.Is(err, errTokenRefused) {
		return false
	}
	return errors.Is(err, errTransient) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// launchBegun records a launch of instance id in dc and returns the func
// that records its return (the driver's clock). pending: the launch
// failed after a create without a definite answer (mayCommitLater), which
// Nova may commit after the return, so a List shows its
// server only if asked for a RequestTimeout after the return — the longest
// Nova may still be handling the request the driver gave up on.
func (d *Driver) launchBegun(dc, id string) func(pending bool) {
	k := key(dc, id)
	d.mu.Lock()
	if d.launches == nil {
		d.launches = map[string]*launchMark{}
	}
	lm := d.launches[k]
	if lm == nil {
		lm = &launchMark{dc: dc}
		d.launches[k] = lm
	}
	lm.running++
	d.mu.Unlock()
	return func(pending bool) {
		d.mu.Lock()
		defer d.mu.Unlock()
		lm.running--
		at := d.clk.Now()
		if pending {
			at = at.Add(time.Duration(d.cfg.RequestTimeout))
		}
		if at.After(lm.returned) { // an earlier pending launch's stays
			lm.returned = at
		}
	}
}

// pruneDelFails ends the delete backoff of the servers of client's DCs
// that all (a list of client: nil for every client, asked for at listed)
// no longer shows, or shows Nova deleting: logged, a state change of the
// server. A failure after listed stays (the list may predate the server).
func (d *Driver) pruneDelFails(client *gophercloud.ServiceClient, all []servers.Server, listed time.Time) {
	dcs := map[string]bool{}
	for dc, c := range d.clients {
		if client == nil || c.Compute == client {
			dcs[dc] = true
		}
	}
	live := map[string]bool{}
	for _, s := range all {
		if !gone(s) {
			live[s.ID] = true
		}
	}
	pruned := d.delFails.prune(dcs, live, listed)
	for _, id := range sortedKeys(pruned) {
		f := pruned[id]
		d.logger().Info("openstack: a server whose delete failed is gone or being deleted: its delete backoff ends",
			"dc", f.dc, "instance", f.id, "server", id, "failures", f.n)
	}
}

// ReissueDeletes deletes again the servers of ours in dc ("" = every DC)
// that a Terminate deleted and the last List of dc showed again, not
// deleting (tombstone.go; at most once per reissueEvery per server, never
// inside its delete backoff). The Reconciler calls it after the List of its
// pass: the writes of the reconciliation stay in its pass and its DCs
// (List only reads).
func (d *Driver) ReissueDeletes(ctx context.Context, dc string) {
	dcs := map[string]bool{}
	clients := map[*gophercloud.ServiceClient]bool{}
	for n, c := range d.clients {
		if dc == "" || n == dc {
			dcs[n] = true
			clients[c.Compute] = true
		}
	}
	var snaps []listSnap
	d.mu.Lock()
	for c := range clients {
		if l, ok := d.lastLists[c]; ok {
			snaps = append(snaps, l)
		}
	}
	d.mu.Unlock()
	for _, l := range snaps {
		d.reissueDeletes(ctx, l.servers, l.listed, dcs)
	}
}

// newestByKey is the instance of each DC/id of list: of several servers
// with one id, the newest (newer), as the look-ups take it.
func newestByKey(list []drivers.Instance) map[string]drivers.Instance {
	out := make(map[string]drivers.Instance, len(list))
	for _, in := range list {
		k := key(in.DC, in.ID)
		if old, ok := out[k]; ok && !newer(instanceAge(in), instanceAge(old)) {
			continue
		}
		out[k] = in
	}
	return out
}

// countDuplicates records, per listed DC, how many servers of list carry
// an instance id another of them carries too (Stats.Duplicates).
func (d *Driver) countDuplicates(dcs []string, list []drivers.Instance) {
	n := map[string]int{}
	ids := map[string]bool{}
	for _, in := range list {
		k := key(in.DC, in.ID)
		if ids[k] {
			n[in.DC]++
		}
		ids[k] = true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dups == nil {
		d.dups = map[string]int{}
	}
	for _, dc := range dcs {
		d.dups[dc] = n[dc]
	}
}

// ---------------------------------------------------------------- Terminate

// Terminate deletes the servers of ours with instance id in dc: the
// instance (the newest, newer) and any older one carrying the id too; a
// server already gone is not an error. It returns once Nova accepted the
// deletes, and leaves a tombstone of each server (tombstone.go): List and
// the look-ups no longer show it even if Nova lists it again. The
// tombstone is laid, and the server renamed terminatedName(id) (the mark a
// restarted driver recognises), before the DELETE is sent, so a retry
// after a lost answer (Nova took the delete, the 204 never came) leaves
// them too; a delete Nova refused (4xx) takes both away again — unless an
// earlier Terminate had deleted that server already (it gave up): one of
// its DELETEs may have been taken, so both stay and the error is returned.
func (d *Driver) Terminate(ctx context.Context, dc, id string) error {
	client, err := d.compute(dc)
	if err != nil {
		return err
	}
	if err := d.allInBackoff(dc, id); err != nil {
		return err // nothing sent, not even the list: not a failure (Stats)
	}
	var targets []servers.Server
	err = d.retry(ctx, "terminate "+id, func() error {
		var err error
		targets, err = d.terminateTargets(ctx, dc, id)
		return err
	})
	deleted := false // a DELETE Nova took: capacity freed
	if err == nil {
		errs := make([]error, 0, len(targets))
		for _, s := range targets {
			serr := d.terminateServer(ctx, client, dc, id, s)
			deleted = deleted || serr == nil
			errs = append(errs, serr)
		}
		err = errors.Join(errs...)
	}
	if deleted {
		d.quotaHits.Terminated(dc)
	}
	switch {
	case err == nil:
	case skipped(err):
		// every server that failed was skipped inside its backoff (none
		// was tried and failed): not counted; any other was deleted
		return backoffError{err}
	default:
		d.terminateFailures.Add(1)
	}
	return err
}

// allInBackoff returns Terminate's Skipped error for instance id in dc
// when every server of id the last List of dc showed not deleting is
// inside its delete backoff (delbackoff.go): the call would send nothing
// but its list. Nil when a server may be tried, or no List showed one, or
// that List may miss a server of id: asked for while a launch of id ran,
// or before one returned (launchMark) — then Terminate lists, and each
// server's own backoff decides (a server launched since is deleted at
// once, not after the others' backoff). A server deleted by hand
// meanwhile ends its backoff at the next List (the poller's).
func (d *Driver) allInBackoff(dc, id string) error {
	client, err := d.compute(dc)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	last, ok := d.lastLists[client]
	lm := d.launches[key(dc, id)]
	ok = ok && (lm == nil || lm.shownBy(last.listed))
	d.mu.Unlock()
	if !ok {
		return nil
	}
	m := match(last.servers, dc, id, false)
	if len(m) == 0 {
		return nil
	}
	now := d.clk.Now()
	errs := make([]error, 0, len(m))
	for i := len(m) - 1; i >= 0; i-- { // newest first, as terminateTargets
		err := d.delFails.wait(m[i].ID, now)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return backoffError{errors.Join(errs...)}
}

// terminateServer deletes s (kill), with Terminate's retries. After a
// DELETE without a definite answer (a 5xx, a timeout) Nova may have
// accepted it, so a retry looks the server up by its Nova id (find hides
// it: tombstoned, maybe deleting) and deletes it again unless Nova is
// deleting it or it is gone.
func (d *Driver) terminateServer(ctx context.Context, client *gophercloud.ServiceClient, dc, id string, s servers.Server) error {
	if err := d.delFails.wait(s.ID, d.clk.Now()); err != nil {
		return err // failed before: not sent again inside its backoff (delbackoff.go)
	}
	// a server an earlier Terminate deleted (terminateTargets' fallback):
	// a refusal now does not show that nothing was deleted, one of the
	// earlier DELETEs may have been taken
	deletedBefore := d.dead(s)
	sent := false
	err := d.retry(ctx, "terminate "+id, func() error {
		if sent {
			cur, ok, err := d.server(ctx, s.ID)
			if err != nil || !ok || gone(cur) {
				return err
			}
			s = cur
		}
		err := d.kill(ctx, client, dc, id, s, sent || deletedBefore)
		sent = sent || errors.Is(err, errTransient)
		return err
	})
	switch {
	case err == nil:
		d.delFails.ok(s.ID)
	case ctx.Err() == nil: // the caller giving up is not a failed delete
		return d.delFails.failed(s.ID, dc, id, err, d.clk.Now())
	}
	return err
}

// terminateTargets are the servers Terminate deletes for instance id,
// newest first (newer, the ranking of the look-ups): those find would
// choose from, the instance first; else the servers of id we deleted
// before (tombstoned or marked) that Nova still lists not deleting. That
// is a Terminate that gave up (every DELETE failed) or a delete Nova lost:
// the caller's retry (the local controller retries every tick) sends the
// DELETE again and gets its outcome, instead of a nil for a server that is
// still running. Several visible servers are warned about once per
// surplus server (newDuplicates, shared with pick), not at every retry.
func (d *Driver) terminateTargets(ctx context.Context, dc, id string) ([]servers.Server, error) {
	all, err := d.freshServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("find server %s: %w", id, err)
	}
	m := match(d.visible(all), dc, id, false)
	if len(m) > 0 {
		slices.Reverse(m)
		if len(m) > 1 && d.newDuplicates(m[1:]) {
			d.logger().Warn("openstack: several servers of ours carry one instance id: Terminate deletes them all",
				"dc", dc, "instance", id, "servers", strings.Join(cloudIDs(m), ","))
		}
		// and the ones of id we deleted before whose delete failed (hidden,
		// still running): Terminate fails, naming them, while they run
		return append(m, d.deadOf(all, dc, id, d.delFails.has)...), nil
	}
	return d.deadOf(all, dc, id, func(string) bool { return true }), nil
}

// deadOf are the servers of id in dc in all, newest first, that we deleted
// before (tombstoned or marked), Nova still lists not deleting, and keep
// chooses by Nova id.
func (d *Driver) deadOf(all []servers.Server, dc, id string, keep func(cloudID string) bool) []servers.Server {
	m := slices.DeleteFunc(match(all, dc, id, false), func(s servers.Server) bool { return !d.dead(s) || !keep(s.ID) })
	slices.Reverse(m)
	return m
}

// DeleteSurplus deletes server cloudID, a surplus server of instance id in
// dc: an older server carrying the id of a newer one (newer; the
// Reconciler's Plan decides it after the grace, ActSurplus). It looks the
// servers of id up again first and deletes cloudID only if a newer one is
// still there — the ranking List, the poller, Plan and the look-ups share,
// so a same-second tie goes the same way here (the higher Nova id is the
// instance) — then as Terminate does (tombstone, mark, DELETE, with
// Terminate's retries and its delete backoff: inside the backoff it
// returns the Skipped *DeleteBackoffError and sends nothing, not even the
// look-up) and counts Stats.SurplusDeleted; the caller logs. It reports
// whether it deleted the server: false, nil when it is gone, being
// deleted, or the instance now.
func (d *Driver) DeleteSurplus(ctx context.Context, dc, id, cloudID string) (bool, error) {
	client, err := d.compute(dc)
	if err != nil {
		return false, err
	}
	if err := d.delFails.wait(cloudID, d.clk.Now()); err != nil {
		return false, err
	}
	var m []servers.Server
	err = d.retry(ctx, "delete surplus server "+cloudID, func() error {
		all, err := d.freshServers(ctx)
		if err != nil {
			return fmt.Errorf("find server %s: %w", id, err)
		}
		m = match(d.visible(all), dc, id, false) // oldest first
		return nil
	})
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(m, func(s servers.Server) bool { return s.ID == cloudID })
	if i < 0 || i == len(m)-1 {
		return false, nil // gone or deleting, or the newest: the instance
	}
	if err := d.terminateServer(ctx, client, dc, id, m[i]); err != nil {
		return false, err
	}
	d.surplusDeleted.Add(1)
	return true, nil
}

// cloudIDs are the Nova ids of list.
func cloudIDs(list []servers.Server) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

// kill deletes server s, instance id's in dc, once Nova listed it. It is
// tombstoned before the DELETE (an answer lost after Nova accepted it must
// not leave the server unguarded: the race tombstone.go handles) and marked
// in Nova, for a restarted driver or another node's — once: a server
// listed marked (a retry, or a Terminate after one that gave up) is not
// renamed again. A DELETE Nova refused (4xx) takes both away again, unless
// kept: an earlier DELETE of the server may have been taken.
func (d *Driver) kill(ctx context.Context, client *gophercloud.ServiceClient, dc, id string, s servers.Server, kept bool) error {
	d.tombs.add(s.ID, dc, id, d.clk.Now())
	if !marked(s) {
		if err := markTerminated(ctx, client, s.ID, id); err != nil {
			d.logger().Warn("openstack: could not mark a server terminated before its delete (only this process will know it dying)",
				"dc", dc, "instance", id, "server", s.ID, "error", err)
		}
	}
	err := d.deleteServer(ctx, client, s.ID)
	// refused (4xx), not lost: nothing was deleted, the server stays ours
	refused := err != nil && !errors.Is(err, errTransient) && !kept
	if !refused {
		// only a list asked for after Nova answered shows what the
		// delete did (the mark's request makes the gap since the
		// tombstone long); a refused one stays pending until it is
		// removed, so no list of ours re-sends the DELETE meanwhile
		d.tombs.sent(s.ID, d.clk.Now())
	}
	if err == nil && s.Status == "BUILD" {
		// still being scheduled, the server was a build request: the
		// conductor makes the cell's instance from its own copy, under
		// the old name, and the delete can then land on it and race
		// its build (on the real Nova: BUILD/networking, unmarked). The
		// instance exists now if the delete went to it: mark it again.
		if merr := markTerminated(ctx, client, s.ID, id); merr != nil {
			d.logger().Warn("openstack: could not mark a server terminated after its delete",
				"dc", dc, "instance", id, "server", s.ID, "error", merr)
		}
	}
	if refused {
		// its name back first, then the tombstone, so a list of ours in
		// between cannot see it marked with no tombstone (it would
		// adopt one)
		if uerr := d.unmark(ctx, client, s.ID, id); uerr != nil {
			err = errors.Join(err, uerr)
		}
		d.tombs.remove(s.ID)
	}
	return err
}

// unmark gives a server whose delete Nova refused its name back.
func (d *Driver) unmark(ctx context.Context, client *gophercloud.ServiceClient, cloudID, id string) error {
	_, err := servers.Update(ctx, client, cloudID, servers.UpdateOpts{Name: id}).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		return classify("unmark server "+cloudID, err)
	}
	return nil
}

func (d *Driver) deleteServer(ctx context.Context, client *gophercloud.ServiceClient, cloudID string) error {
	err := servers.Delete(ctx, client, cloudID).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		return classify("delete server "+cloudID, err)
	}
	return nil
}

// ---------------------------------------------------------------- waiting

// Poll intervals of WaitActive / WaitGone: from pollFirst, ×1.5 per poll, at
// most pollMax. Concurrent waits share one list per poll (snapshot.go), so a
// short pollMax costs one list a second, not one per server.
const (
	pollFirst = 250 * time.Millisecond
	pollMax   = time.Second
)

// WaitActive polls the server with instance id until it is ACTIVE, with
// bounded backoff and at most Config.ActiveTimeout on the driver's clock. A
// server in ERROR gives ErrCapacity for "No valid host", else errBuildFailed
// with Nova's fault message.
func (d *Driver) WaitActive(ctx context.Context, dc, id string) (drivers.Instance, error) {
	return d.waitActive(ctx, dc, id, nil)
}

// waitActive is WaitActive for a server known already (nil: not known):
// its first poll is what known shows, taken from a list or a create just
// answered (launch), instead of a list at once that would show the same.
func (d *Driver) waitActive(ctx context.Context, dc, id string, known *servers.Server) (drivers.Instance, error) {
	if _, err := d.compute(dc); err != nil {
		return drivers.Instance{}, err
	}
	deadline := d.clk.Now().Add(time.Duration(d.cfg.ActiveTimeout))
	wait := pollFirst
	cloudID := ""
	for {
		var s *servers.Server
		if known != nil {
			s, cloudID, known = known, known.ID, nil
		}
		err := d.retry(ctx, "wait for "+id, func() error {
			if s != nil {
				return nil
			}
			all, err := d.freshServers(ctx)
			if err != nil {
				return err
			}
			m := match(all, dc, id, true)
			slices.Reverse(m) // without a Nova id, the newest (as find)
			for _, c := range m {
				// without a Nova id, a server we terminated is not the one to wait for
				if cloudID == "" && !d.dead(c) || c.ID == cloudID {
					s, cloudID = &c, c.ID
					break
				}
			}
			return nil
		})
		if err != nil {
			return drivers.Instance{}, err
		}
		if s == nil {
			return drivers.Instance{}, fmt.Errorf("openstack: wait for %s: %w: no such server (deleted while booting?)", id, drivers.ErrNotFound)
		}
		inst := toInstance(*s)
		switch {
		case d.hidden(*s):
			inst.State = drivers.StateGone
			return inst, fmt.Errorf("openstack: wait for %s: %w: deleted while booting", id, drivers.ErrNotFound)
		case s.Status == "ACTIVE":
			return inst, nil
		case s.Status == "ERROR":
			if isNoValidHost(s.Fault.Message) {
				return inst, fmt.Errorf("openstack: %s: %w: %s", id, drivers.ErrCapacity, s.Fault.Message)
			}
			return inst, fmt.Errorf("openstack: %s: %w: %s", id, errBuildFailed, s.Fault.Message)
		}
		if !d.clk.Now().Add(wait).Before(deadline) {
			return inst, fmt.Errorf("openstack: %s not ACTIVE after %s (status %s): %w", id, time.Duration(d.cfg.ActiveTimeout), s.Status, errTimeout)
		}
		if err := d.sleep(ctx, wait); err != nil {
			return inst, err
		}
		wait = min(wait*3/2, pollMax)
	}
}

// Sequential reports whether launches of spec's pool go one at a time (a
// hard anti-affinity group; see LaunchActive).
func (d *Driver) Sequential(spec drivers.Spec) bool { return !d.cfg.spreading(poolName(spec)).Soft }

// lane returns the mutex that serialises launches into one group.
func (d *Driver) lane(group string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.lanes[group]
	if !ok {
		l = &sync.Mutex{}
		d.lanes[group] = l
	}
	return l
}

// errTimeout: a bounded wait ran out.
var errTimeout = errors.New("timed out")

// WaitGone polls until no server of ours has instance id, counting servers
// Nova is still deleting (they hold quota and a group slot), bounded like
// WaitActive. A terminated server Nova lists again, not deleting, is deleted
// again from its polls (as List does, tombstone.go), so a lost delete costs
// at most reissueEvery more, not the whole bound.
func (d *Driver) WaitGone(ctx context.Context, dc, id string) error {
	if _, err := d.compute(dc); err != nil {
		return err
	}
	deadline := d.clk.Now().Add(time.Duration(d.cfg.ActiveTimeout))
	wait := pollFirst
	for {
		var ok bool
		err := d.retry(ctx, "wait for "+id+" to go", func() error {
			all, listed, err := d.freshList(ctx)
			if err != nil {
				return fmt.Errorf("find server %s: %w", id, err)
			}
			// a delete Nova lost is sent again here too: with no List
			// running (no poller), the wait would last ActiveTimeout
			d.reissueDeletes(ctx, all, listed, map[string]bool{dc: true})
			ok = len(match(all, dc, id, true)) > 0
			return nil
		})
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if !d.clk.Now().Add(wait).Before(deadline) {
			return fmt.Errorf("openstack: %s still there after %s: %w", id, time.Duration(d.cfg.ActiveTimeout), errTimeout)
		}
		if err := d.sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*3/2, pollMax)
	}
}

// LaunchActive launches spec and waits for ACTIVE. A server that goes to
// ERROR is deleted; for "No valid host" LaunchActive returns ErrCapacity at
// once (launching again would fail the same way), for any other fault it
// launches again, at most Config.Rebuilds times. Quota and invalid-spec
// errors are returned as they are: nothing healthy is ever deleted.
//
// Launches into one hard anti-affinity group are serialised (each waits until
// the previous one left BUILD): Nova checks the group's per-host limit on
// servers already placed, so parallel boots into a nearly full group race and
// can end in "No valid host" although there is room. Pools with a soft policy,
// and different pools, launch in parallel.
func (d *Driver) LaunchActive(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	if err := validateSpec(spec); err != nil {
		return drivers.Instance{}, err
	}
	if _, err := d.compute(spec.DC); err != nil {
		return drivers.Instance{}, err
	}
	if d.Sequential(spec) {
		lane := d.lane(GroupName(spec.DC, poolName(spec)))
		lane.Lock()
		defer lane.Unlock()
	}
	var lastErr error
	for attempt := 0; attempt <= d.cfg.Rebuilds; attempt++ {
		_, seen, err := d.launch(ctx, spec, true)
		if err != nil {
			return drivers.Instance{}, err
		}
		inst, err := d.waitActive(ctx, spec.DC, spec.ID, &seen)
		if err == nil {
			return inst, nil
		}
		if !errors.Is(err, drivers.ErrCapacity) && !errors.Is(err, errBuildFailed) {
			return inst, err
		}
		// an ERROR server holds quota and a group slot: remove it before anything else
		if derr := d.Terminate(ctx, spec.DC, spec.ID); derr != nil {
			return inst, errors.Join(err, derr)
		}
		if werr := d.WaitGone(ctx, spec.DC, spec.ID); werr != nil {
			return inst, errors.Join(err, werr)
		}
		if errors.Is(err, drivers.ErrCapacity) {
			return drivers.Instance{}, err
		}
		lastErr = err
	}
	return drivers.Instance{}, fmt.Errorf("openstack: %s: gave up after %d rebuilds: %w", spec.ID, d.cfg.Rebuilds, lastErr)
}
