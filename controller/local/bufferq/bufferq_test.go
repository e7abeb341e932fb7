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
	if e, _ := q.Head(); e.ID != "a" {
		t.Fatalf("Head = %v, want a (oldest)", e)
	}
	if !q.Remove("b") || q.Remove("b") {
		t.Fatal("Remove must report true once")
	}
	if got := ids(q.Entries()); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("entries %v", got)
	}
}

func TestPopExpired(t *testing.T) {
	tests := []struct {
		name string
		tags []uint64
		now  uint64
		tau  uint64
		want []string
	}{
		{"none old enough", []uint64{5, 6}, 14, 10, nil},
		{"exactly tau", []uint64{4, 5, 6}, 14, 10, []string{"e0"}},
		{"several", []uint64{1, 2, 9}, 14, 10, []string{"e0", "e1"}},
		{"stops at first young head", []uint64{10, 1}, 14, 10, nil},
		{"tau zero expires all", []uint64{1, 2}, 2, 0, []string{"e0", "e1"}},
		{"future tag kept", []uint64{20}, 14, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q Queue
			for i, tag := range tc.tags {
				q.PushTail(fmt.Sprintf("e%d", i), tag)
			}
			got := ids(q.PopExpired(tc.now, tc.tau))
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("expired %v, want %v", got, tc.want)
			}
			if q.Len() != len(tc.tags)-len(tc.want) {
				t.Fatalf("len %d", q.Len())
			}
		})
	}
}

// TestDequeModel checks the ring against a plain slice model under random
// operation sequences: same contents, same order, tail pops return the
// newest, head pops the oldest, expiry takes a prefix of old-enough entries.
func TestDequeModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q Queue
		var model []Entry
		var interval uint64
		next := 0
		t.Repeat(map[string]func(*rapid.T){
			"push": func(t *rapid.T) {
				interval += uint64(rapid.IntRange(0, 3).Draw(t, "dt"))
				id := fmt.Sprintf("i%d", next)
				next++
				q.PushTail(id, interval)
				model = append(model, Entry{id, interval})
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
			"popHead": func(t *rapid.T) {
				e, ok := q.PopHead()
				if ok != (len(model) > 0) {
					t.Fatalf("PopHead ok=%v with model len %d", ok, len(model))
				}
				if ok {
					if e != model[0] {
						t.Fatalf("PopHead %v, want %v", e, model[0])
					}
					model = model[1:]
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
			"expire": func(t *rapid.T) {
				tau := uint64(rapid.IntRange(0, 5).Draw(t, "tau"))
				got := q.PopExpired(interval, tau)
				k := 0
				for k < len(model) && interval-model[k].Interval >= tau {
					k++
				}
				if !slices.Equal(got, model[:k]) && !(len(got) == 0 && k == 0) {
					t.Fatalf("expired %v, want %v", got, model[:k])
				}
				model = model[k:]
				for _, e := range model[:min(1, len(model))] {
					if interval-e.Interval >= tau {
						t.Fatalf("head %v left although expired", e)
					}
				}
			},
			"": func(t *rapid.T) {
				if got := q.Entries(); !slices.Equal(got, model) && !(len(got) == 0 && len(model) == 0) {
					t.Fatalf("entries %v, model %v", got, model)
				}
				if q.Len() != len(model) {
					t.Fatalf("Len %d, model %d", q.Len(), len(model))
				}
				for i := 1; i < len(model); i++ {
					if model[i].Interval < model[i-1].Interval {
						t.Fatalf("tags decrease head→tail: %v", model)
					}
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
