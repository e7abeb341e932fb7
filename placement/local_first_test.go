package placement

import "testing"

// DC 1's one instance is exactly what its local pair (1,1) needs; the cross
// pair 1→0 currently uses DC 1 too, and DC 0 has a buffered instance. With
// Options.LocalFirst the local pair's capacity is taken first, the cross pair's current path no longer
// fits and Alg. 2 moves it to DC 0's buffered instance: nothing is created.
// In the paper's order (the default) the cross pair keeps its path and the
// local pair creates an instance in DC 1.
func TestLocalPairsFirstReuseAnotherDCsBuffer(t *testing.T) {
	build := func() *Snapshot {
		s := snap(2, 10, 250, 100)
		s.DP[1][0] = Provision{Working: 1}
		s.DP[0][0] = Provision{Buffered: 1}
		s.DPWorkload[Pair{1, 1}] = 100
		s.DPWorkload[Pair{1, 0}] = 50
		s.CurrentPaths[Pair{1, 0}] = Path{1, 1, 0}
		return s
	}
	for _, tc := range []struct {
		name             string
		opt              Options
		created, reused  int
		path             Path
		method           Method // "": any new path (not kept)
		dc1Work, dc0Work int
	}{
		{"LocalFirst", Options{LocalFirst: true}, 0, 1, Path{1, 0, 0}, "", 1, 1},
		{"paper order (default)", Options{}, 1, 0, Path{1, 1, 0}, MethodKept, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := Plan(build(), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			tot := dec.Totals()
			if tot.Created != tc.created || tot.Reused != tc.reused {
				t.Fatalf("created %d reused %d, want %d and %d", tot.Created, tot.Reused, tc.created, tc.reused)
			}
			var cross PairPlan
			for _, p := range dec.Pairs {
				if p.Pair == (Pair{1, 0}) {
					cross = p
				}
			}
			if !cross.Path.Equal(tc.path) || (tc.method != "" && cross.Method != tc.method) || (tc.method == "" && cross.Method == MethodKept) {
				t.Fatalf("pair 1→0: %v (%s), want %v (%s)", cross.Path, cross.Method, tc.path, tc.method)
			}
			if dec.DP[1][0].Working != tc.dc1Work || dec.DP[0][0].Working != tc.dc0Work {
				t.Fatalf("working DC1 %d DC0 %d, want %d and %d", dec.DP[1][0].Working, dec.DP[0][0].Working, tc.dc1Work, tc.dc0Work)
			}
			if last := dec.Pairs[len(dec.Pairs)-1]; last.Pair != (Pair{1, 1}) || last.Method != MethodLocal {
				t.Fatalf("the entry = exit pair must be listed last: %+v", last)
			}
		})
	}
}
