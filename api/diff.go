package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// Diff lists what changed from old to new, leaf by leaf, comparing their JSON
// forms. Objects are compared key by key (sorted); arrays of objects that all
// carry a distinct string "name" are matched by name (path "vnfTypes[ids]"),
// other arrays index by index ("delaysMs[0][2]"). A leaf only in new has no
// From, a leaf only in old no To. The result is never nil, empty when
// nothing changed.
func Diff(old, new any) []Change {
	out := []Change{}
	diffValues(&out, "", normalize(old), normalize(new))
	return out
}

func normalize(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only API types reach here, and they always marshal.
		panic(fmt.Sprintf("api.Diff: %v", err))
	}
	var g any
	_ = json.Unmarshal(b, &g)
	return g
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func diffValues(out *[]Change, path string, a, b any) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(av)+len(bv))
			for k := range av {
				keys = append(keys, k)
			}
			for k := range bv {
				if _, ok := av[k]; !ok {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				diffValues(out, join(path, k), av[k], bv[k])
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			diffArrays(out, path, av, bv)
			return
		}
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	// A whole object or array appearing or disappearing is one change.
	*out = append(*out, Change{Path: path, From: a, To: b})
}

// names returns the "name" of every element when all are objects with a
// distinct non-empty string name.
func names(xs []any) ([]string, bool) {
	ns := make([]string, len(xs))
	seen := make(map[string]bool, len(xs))
	for i, x := range xs {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || n == "" || seen[n] {
			return nil, false
		}
		seen[n] = true
		ns[i] = n
	}
	return ns, true
}

func diffArrays(out *[]Change, path string, a, b []any) {
	an, aok := names(a)
	bn, bok := names(b)
	if aok && bok && (len(a) > 0 || len(b) > 0) {
		ai := make(map[string]int, len(a))
		for i, n := range an {
			ai[n] = i
		}
		inB := make(map[string]bool, len(b))
		for j, n := range bn {
			inB[n] = true
			p := fmt.Sprintf("%s[%s]", path, n)
			if i, ok := ai[n]; ok {
				diffValues(out, p, a[i], b[j])
			} else {
				*out = append(*out, Change{Path: p, To: b[j]})
			}
		}
		for i, n := range an {
			if !inB[n] {
				*out = append(*out, Change{Path: fmt.Sprintf("%s[%s]", path, n), From: a[i]})
			}
		}
		return
	}
	for i := 0; i < len(a) || i < len(b); i++ {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case i >= len(a):
			*out = append(*out, Change{Path: p, To: b[i]})
		case i >= len(b):
			*out = append(*out, Change{Path: p, From: a[i]})
		default:
			diffValues(out, p, a[i], b[i])
		}
	}
}

// putResult builds a PUT answer from the previous and the new value.
func putResult(existed bool, prev, next any) PutResult {
	if !existed {
		return PutResult{Outcome: OutcomeCreated, Changes: Diff(map[string]any{}, next)}
	}
	ch := Diff(prev, next)
	if len(ch) == 0 {
		return PutResult{Outcome: OutcomeUnchanged, Changes: ch}
	}
	return PutResult{Outcome: OutcomeUpdated, Changes: ch}
}
