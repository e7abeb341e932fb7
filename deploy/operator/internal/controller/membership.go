package controller

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// step is the one membership change to make next (at most one per
// reconcile: raft changes its configuration one server at a time).
type step struct {
	join  int    // ordinal to join, -1 when none
	leave string // member id to remove, "" when none
	wait  string // why nothing can be done yet ("" when in place or acting)
}

// ordinalOf returns the StatefulSet ordinal of a member id of instance
// name, or -1 for an id that is not one of its pods.
func ordinalOf(name, id string) int {
	s, ok := strings.CutPrefix(id, name+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || strconv.Itoa(i) != s {
		return -1
	}
	return i
}

// nextStep decides the next membership change: first join the missing
// ordinals below desired in order, each once its pod has started; then remove
// the members that should not be there, highest ordinal first (ids that are
// no pod of this instance first of all).
func nextStep(name string, desired int, voters []string, started func(ordinal int) bool) step {
	for i := range desired {
		if slices.Contains(voters, podName(name, i)) {
			continue
		}
		if !started(i) {
			return step{join: -1, wait: fmt.Sprintf("waiting for pod %s to start (its API to answer) to join it", podName(name, i))}
		}
		return step{join: i}
	}
	extra := ""
	best := -2
	for _, v := range voters {
		o := ordinalOf(name, v)
		if o >= 0 && o < desired {
			continue
		}
		if o == -1 {
			o = 1 << 30 // not a pod of ours: remove first
		}
		if o > best {
			best, extra = o, v
		}
	}
	return step{join: -1, leave: extra}
}

// stsReplicas is the StatefulSet size: the desired replicas, but never
// below a member still in the raft configuration (a pod leaves raft before
// it is removed).
func stsReplicas(name string, desired int32, voters []string) int32 {
	n := desired
	for _, v := range voters {
		if o := ordinalOf(name, v); o >= 0 && int32(o)+1 > n {
			n = int32(o) + 1
		}
	}
	return n
}
