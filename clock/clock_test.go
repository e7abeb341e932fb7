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

func TestEvery(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	var at []time.Duration
	var r *Repeater
	r = Every(v, 2*time.Second, func() bool {
		at = append(at, v.Now().Sub(time.Unix(0, 0)))
		return len(at) < 4
	})
	v.Advance(20 * time.Second)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second}
	if len(at) != len(want) || !r.Stopped() {
		t.Fatalf("calls at %v (stopped %v), want %v and stopped after f returned false", at, r.Stopped(), want)
	}
	for i := range want {
		if at[i] != want[i] {
			t.Fatalf("calls at %v, want %v", at, want)
		}
	}
	n := 0
	r = Every(v, time.Second, func() bool { n++; return true })
	v.Advance(3 * time.Second)
	r.Stop()
	r.Stop()
	v.Advance(5 * time.Second)
	if n != 3 {
		t.Fatalf("%d calls, want 3 before Stop and none after", n)
	}
}
