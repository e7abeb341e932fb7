package drivers

import "testing"

func TestSubscribersOrderAndCancel(t *testing.T) {
	var s Subscribers
	var got []string
	a := s.Subscribe(func(Event) { got = append(got, "a") })
	s.Subscribe(func(Event) { got = append(got, "b") })
	s.Subscribe(func(Event) { got = append(got, "c") })
	s.Emit(Event{})
	a()
	a() // a second cancel is harmless
	s.Emit(Event{})
	if want := "abcbc"; join(got) != want {
		t.Fatalf("got %s, want %s", join(got), want)
	}
}

func TestSubscriberMayCallBack(t *testing.T) {
	var s Subscribers
	n := 0
	s.Subscribe(func(Event) {
		n++
		if n == 1 {
			s.Subscribe(func(Event) { n += 10 }) // subscribing from a handler must not deadlock
		}
	})
	s.Emit(Event{})
	s.Emit(Event{})
	if n != 12 {
		t.Fatalf("n = %d, want 12", n)
	}
}

func TestCloneSharesNoMap(t *testing.T) {
	in := Instance{ID: "x", Metadata: map[string]string{"k": "v"}}
	c := in.Clone()
	c.Metadata["k"] = "changed"
	if in.Metadata["k"] != "v" {
		t.Fatal("clone shares the metadata map")
	}
}

func join(s []string) string {
	out := ""
	for _, x := range s {
		out += x
	}
	return out
}
