package instbound

import (
	"strings"
	"testing"
)

func TestPerDC(t *testing.T) {
	cases := []struct {
		n    int
		dp   bool
		want int
	}{{4, true, 252}, {4, false, Sanity}, {1, true, 255}, {128, true, 128}, {0, true, 0}, {256, true, 0}}
	for _, c := range cases {
		if got := PerDC(c.n, c.dp); got != c.want {
			t.Errorf("PerDC(%d, %v) = %d, want %d", c.n, c.dp, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check("limits[0].max", 252, 4, true); err != nil {
		t.Fatal(err)
	}
	err := Check("limits[0].max", 253, 4, true)
	if err == nil || !strings.Contains(err.Error(), "limits[0].max: 253 is above 252") {
		t.Fatalf("dp: %v", err)
	}
	err = Check("limits[0].min", 12000, 4, false)
	if err == nil || !strings.Contains(err.Error(), "sanity limit of 10000") {
		t.Fatalf("cp: %v", err)
	}
}
