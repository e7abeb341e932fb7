package daemon

import (
	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/instbound"
)

// Instance bounds (issue 19): every number of working instances an operator
// writes — policy limits (also in a dry run), the configured VNF min and max
// — is checked against instbound.PerDC, the one documented bound (a
// data-plane stage: 256 − datacenters, what a DC's routing table can
// address; every VNF: the sanity limit 10 000).

// isDataPlane reports whether name is a stage of the DP chain.
func (c *Config) isDataPlane(name string) bool {
	for _, v := range c.Topology.Chain {
		if v.Name == name {
			return true
		}
	}
	return false
}

// instanceBound is the bound of a VNF in one DC of this topology.
func (c *Config) instanceBound(vnf string) int {
	return instbound.PerDC(len(c.Topology.Datacenters), c.isDataPlane(vnf))
}

// checkLimitBound adds to v the errors of one limit above the bound.
func (c *Config) checkLimitBound(v *api.ValidationError, field string, l api.Limit) {
	n, dp := len(c.Topology.Datacenters), c.isDataPlane(l.VNF)
	if err := instbound.Check(field+".min", l.Min, n, dp); err != nil {
		v.Add(field+".min", "%v", trimField(err.Error(), field+".min"))
	}
	if err := instbound.Check(field+".max", l.Max, n, dp); err != nil {
		v.Add(field+".max", "%v", trimField(err.Error(), field+".max"))
	}
}

// checkVNFBound checks a configured VNF's min and max.
func (c *Config) checkVNFBound(field string, v *VNFConfig) error {
	n, dp := len(c.Topology.Datacenters), c.isDataPlane(v.Name)
	if err := instbound.Check(field+".min", v.Min, n, dp); err != nil {
		return err
	}
	return instbound.Check(field+".max", v.Max, n, dp)
}

// trimField drops "field: " from an error message (ValidationError names
// the field itself).
func trimField(msg, field string) string {
	if len(msg) > len(field)+2 && msg[:len(field)+2] == field+": " {
		return msg[len(field)+2:]
	}
	return msg
}

// DriverDefault is what GET vnf-types shows for an image or flavor the
// config leaves empty (the sim, fake and local drivers use none): the API
// requires both, so a GET body can be PUT back unchanged (issue 19).
const DriverDefault = "driver-default"

func orDriverDefault(s string) string {
	if s == "" {
		return DriverDefault
	}
	return s
}
