package clock

import (
	"testing"
	"time"
)

func TestVirtualFiresInOrder(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	var got []int
	v.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	v.AfterFunc(1*time.Second, func() {
		got = append(got, 1)
		v.AfterFunc(time.Second, func() { got = append(got, 2) }) // at t=2s
	})
	stop := v.AfterFunc(2500*time.Millisecond, func() { got = append(got, 99) })
	if !stop.Stop() {
		t.Fatal("Stop of a pending timer must report true")
	}
	if stop.Stop() {
		t.Fatal("second Stop must report false")
	}
	v.Advance(2 * time.Second)
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("after 2s got %v, want [1 2]", got)
	}
	if !v.Now().Equal(time.Unix(2, 0)) {
		t.Fatalf("now = %v", v.Now())
	}
	v.Advance(time.Hour)
	if len(got) != 3 || got[2] != 3 || v.Pending() != 0 {
		t.Fatalf("got %v pending %d", got, v.Pending())
	}
}

func TestVirtualTiesKeepInsertionOrder(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	var got []int
	for i := 0; i < 5; i++ {
		v.AfterFunc(time.Second, func() { got = append(got, i) })
	}
	for v.Step() {
	}
	for i, g := range got {
		if g != i {
			t.Fatalf("got %v", got)
		}
	}
}
