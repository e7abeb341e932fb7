package placement

// plan is being written (alg1.go); this placeholder keeps the module building.
func plan(s *Snapshot, opt Options) *Decision { return &Decision{} }
