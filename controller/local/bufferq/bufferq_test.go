package bufferq

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func ids(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestOrder(t *testing.T) {
	var q Queue
	for i, id := range []string{"a", "b", "c", "d"} {
		q.PushTail(id, uint64(i))
	}
	if e, _ := q.PopTail(); e.ID != "d" {
		t.Fatalf("PopTail = %v, want d (newest)", e)
	}
	if !q.Remove("b") || q.Remove("b") {
		t.Fatal("Remove must report true once")
	}
	if got := ids(q.Entries()); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("entries %v", got)
	}
}

// TestDequeModel checks the ring against a plain slice model under random
// operation sequences: same contents, same order, tail pops return the
// newest, PopDue takes the first n due entries head first (tags as the
// local controller pushes them: this interval, or the next one for the
// falling scale-in) and keeps the order of the rest.
func TestDequeModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q Queue
		var model []Entry
		var interval uint64
		next := 0
		t.Repeat(map[string]func(*rapid.T){
			"push": func(t *rapid.T) {
				interval += uint64(rapid.IntRange(0, 3).Draw(t, "dt"))
				tag := interval + uint64(rapid.IntRange(0, 1).Draw(t, "ahead"))
				id := fmt.Sprintf("i%d", next)
				next++
				q.PushTail(id, tag)
				model = append(model, Entry{id, tag})
			},
			"popTail": func(t *rapid.T) {
				e, ok := q.PopTail()
				if ok != (len(model) > 0) {
					t.Fatalf("PopTail ok=%v with model len %d", ok, len(model))
				}
				if ok {
					if want := model[len(model)-1]; e != want {
						t.Fatalf("PopTail %v, want %v", e, want)
					}
					model = model[:len(model)-1]
				}
			},
			"remove": func(t *rapid.T) {
				if next == 0 {
					return
				}
				id := fmt.Sprintf("i%d", rapid.IntRange(0, next-1).Draw(t, "id"))
				idx := slices.IndexFunc(model, func(e Entry) bool { return e.ID == id })
				if got := q.Remove(id); got != (idx >= 0) {
					t.Fatalf("Remove(%s) = %v, model index %d", id, got, idx)
				}
				if idx >= 0 {
					model = slices.Delete(model, idx, idx+1)
				}
			},
			"popDue": func(t *rapid.T) {
				tau := uint64(rapid.IntRange(0, 5).Draw(t, "tau"))
				n := rapid.IntRange(0, 6).Draw(t, "n")
				due := func(e Entry) bool { return e.Interval <= interval && interval-e.Interval >= tau }
				got := q.PopDue(n, due)
				var want, rest []Entry
				for _, e := range model {
					if len(want) < n && due(e) {
						want = append(want, e)
					} else {
						rest = append(rest, e)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("PopDue(%d, tau %d) at %d = %v, want %v", n, tau, interval, got, want)
				}
				model = rest
			},
			"": func(t *rapid.T) {
				if got := q.Entries(); !slices.Equal(got, model) && !(len(got) == 0 && len(model) == 0) {
					t.Fatalf("entries %v, model %v", got, model)
				}
				if q.Len() != len(model) {
					t.Fatalf("Len %d, model %d", q.Len(), len(model))
				}
			},
		})
	})
}

func BenchmarkPushPopTail(b *testing.B) {
	var q Queue
	for i := 0; i < 64; i++ {
		q.PushTail("x", uint64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		q.PushTail("y", 100)
		q.PopTail()
	}
}

// PopDue skips entries that are not due and keeps the order of the rest:
// an entry tagged ahead (5) does not hold back a due one (3) behind it; n
// bounds how many go.
func TestPopDue(t *testing.T) {
	var q Queue
	for _, e := range []Entry{{"a", 2}, {"f", 5}, {"b", 3}, {"c", 4}, {"d", 3}} {
		q.PushTail(e.ID, e.Interval)
	}
	due := func(e Entry) bool { return e.Interval+2 <= 5 }
	if got := ids(q.PopDue(2, due)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("PopDue(2) = %v, want [a b]", got)
	}
	if got := ids(q.Entries()); !slices.Equal(got, []string{"f", "c", "d"}) {
		t.Fatalf("left %v, want [f c d]", got)
	}
	if got := ids(q.PopDue(5, due)); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("PopDue(5) = %v, want [d]", got)
	}
	if got := q.PopDue(0, func(Entry) bool { return true }); len(got) != 0 || q.Len() != 2 {
		t.Fatalf("PopDue(0) = %v, len %d", got, q.Len())
	}
}
