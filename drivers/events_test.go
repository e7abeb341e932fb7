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

func TestSpecPoolAndMetadata(t *testing.T) {
	s := Spec{ID: "tokyo-ids-3", DC: "tokyo", VNF: "ids", Metadata: map[string]string{"owner": "noc", MetaDC: "forged"}}
	if got := s.DefaultPool(); got != "tokyo/ids" {
		t.Fatalf("default pool %q, want tokyo/ids", got)
	}
	md := s.CloudMetadata("ids")
	want := map[string]string{"owner": "noc", MetaManagedBy: ManagedBy, MetaDC: "tokyo", MetaVNF: "ids", MetaPool: "ids", MetaID: "tokyo-ids-3"}
	if len(md) != len(want) {
		t.Fatalf("metadata %v, want %v", md, want)
	}
	for k, v := range want {
		if md[k] != v {
			t.Fatalf("metadata[%s] = %q, want %q (ours override the spec's)", k, md[k], v)
		}
	}
	if s.Metadata[MetaDC] != "forged" {
		t.Fatal("CloudMetadata changed the spec's map")
	}
	s.Pool = "n+2"
	if s.DefaultPool() != "n+2" {
		t.Fatal("an explicit pool is not kept")
	}
}
