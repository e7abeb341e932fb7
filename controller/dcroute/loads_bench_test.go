package dcroute

import (
	"fmt"
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
)

// BenchmarkSetLoads measures what a data plane's flow count costs the
// router each sample (once per DC per second): the counted loads of every
// instance of 3 stages, 20 routable and 5 parked per stage.
func BenchmarkSetLoads(b *testing.B) {
	stages := []string{"firewall", "ids", "transcoder"}
	r, err := New("a", []string{"a", "b"}, stages, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	var loads []map[uint8]float64
	for _, vnf := range stages {
		var insts []local.RoutableInstance
		for i := 0; i < 25; i++ {
			insts = append(insts, local.RoutableInstance{ID: fmt.Sprintf("%s-%d", vnf, i)})
		}
		r.SetInstances(vnf, insts)
		r.SetInstances(vnf, insts[:20]) // 5 parked
		l := map[uint8]float64{}
		for i := 0; i < 25; i++ {
			l[uint8(2+i)] = float64(i % 7)
		}
		loads = append(loads, l)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for s, l := range loads {
			r.SetLoads(s+1, l)
		}
	}
}
