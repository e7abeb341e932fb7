package placement

// RandomSnap exposes the random round generator to the external tests
// (roundgap_test.go, which needs solver/exactround).
var RandomSnap = randomSnap
