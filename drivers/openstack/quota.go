package openstack

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"

	"github.com/ims-orch/ims-orch/drivers"
)

var _ drivers.QuotaReporter = (*Driver)(nil)

// flavorSize is what one server of a flavor takes from the compute quota.
type flavorSize struct{ vcpus, ramMB int }

// QuotaLeft implements drivers.QuotaReporter from Nova's absolute limits of
// the project (GET /limits: instances, cores and RAM, maximum and used): for
// each spec, how many more servers of its flavor fit, the smallest of
// instances left, cores left ÷ the flavor's vCPUs and RAM left ÷ its RAM (a
// maximum of −1 is no limit). A flavor whose last launch in dc failed with
// a quota error counts 0 until a server of dc is terminated or a launch of
// it succeeds: Nova's counters lag behind a launch (a server that is still
// a build request is not in the usage yet), its refusal does not. Server-
// group member quotas are not counted.
func (d *Driver) QuotaLeft(ctx context.Context, dc string, specs []drivers.Spec) ([]int, error) {
	client, err := d.compute(dc)
	if err != nil {
		return nil, err
	}
	var abs limits.Absolute
	err = d.retry(ctx, "read compute limits of "+dc, func() error {
		l, err := limits.Get(ctx, client, limits.GetOpts{}).Extract()
		if err != nil {
			return classify("get limits", err)
		}
		abs = l.Absolute
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]int, len(specs))
	for i, spec := range specs {
		flavor := d.flavorOf(dc, spec)
		if flavor == "" {
			return nil, fmt.Errorf("openstack: quota of %s in %s: flavor: %w: empty in the spec and in datacenters.%s", spec.VNF, dc, drivers.ErrInvalid, dc)
		}
		if d.quotaHits.Hit(dc, flavor) {
			continue // 0
		}
		size, err := d.flavorSize(ctx, dc, flavor)
		if err != nil {
			return nil, err
		}
		out[i] = quotaLeft(abs, size)
	}
	return out, nil
}

// quotaLeft is how many servers of size fit in the limits (drivers.Unlimited
// when none of the three is limited).
func quotaLeft(abs limits.Absolute, size flavorSize) int {
	left := drivers.Unlimited
	bound := func(limit, used, per int) {
		if limit < 0 || per <= 0 {
			return
		}
		if n := max(0, limit-used) / per; left == drivers.Unlimited || n < left {
			left = n
		}
	}
	bound(abs.MaxTotalInstances, abs.TotalInstancesUsed, 1)
	bound(abs.MaxTotalCores, abs.TotalCoresUsed, size.vcpus)
	bound(abs.MaxTotalRAMSize, abs.TotalRAMUsed, size.ramMB)
	return left
}

// flavorSize reads a flavor's vCPUs and RAM (once per DC and flavor).
func (d *Driver) flavorSize(ctx context.Context, dc, name string) (flavorSize, error) {
	d.mu.Lock()
	size, ok := d.flavorSizes[dc+"/"+name]
	d.mu.Unlock()
	if ok {
		return size, nil
	}
	id, err := d.flavorID(ctx, dc, name)
	if err != nil {
		return flavorSize{}, err
	}
	client := d.clients[dc].Compute
	err = d.retry(ctx, "read flavor "+name, func() error {
		f, err := flavors.Get(ctx, client, id).Extract()
		if err != nil {
			return classify("get flavor "+id, err)
		}
		size = flavorSize{vcpus: f.VCPUs, ramMB: f.RAM}
		return nil
	})
	if err != nil {
		return flavorSize{}, fmt.Errorf("openstack: size of flavor %q in %s: %w", name, dc, err)
	}
	d.mu.Lock()
	d.flavorSizes[dc+"/"+name] = size
	d.mu.Unlock()
	return size, nil
}
