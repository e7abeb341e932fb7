package local

// DefaultLaunchBatch is Config.LaunchBatch's default.
const DefaultLaunchBatch = 32

// boundOf is the most working instances of a VNF here: its VNFConfig.Bound
// (instbound.PerDC of the topology, set by whoever builds the controller),
// at most the sanity limit MaxWorking.
func boundOf(v VNFConfig) int {
	if v.Bound > 0 && v.Bound < MaxWorking {
		return v.Bound
	}
	return MaxWorking
}

// launchRoomLocked is how many more launches of a VNF may start now: at most
// Config.LaunchBatch are in flight per VNF (as cluster-autoscaler bounds a
// scale-up), the rest of a shortfall is launched by the next ticks.
func (c *Controller) launchRoomLocked(vnf string) int {
	inFlight := 0
	for _, in := range c.insts {
		if in.VNF == vnf && in.launching {
			inFlight++
		}
	}
	return max(0, c.cfg.LaunchBatch-inFlight)
}
