package fsm

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/controller/instbound"
)

// Document key prefixes of State.Docs: the key is the prefix followed by a
// name (1-63 letters, digits, '.', '_' or '-', starting with a letter or
// digit, the API's name rule).
const (
	// DocPolicy prefixes a saved scaling policy (the API's JSON form) other
	// than the one in force.
	DocPolicy = "policy/"
	// DocLabels prefixes a datacenter's labels (group, region, AZ).
	DocLabels = "labels/"
	// DocOp prefixes an operation record (a drain or undrain), so that any
	// node answers GET operation, also after a leader change.
	DocOp = "op/"
)

// Bounds on the replicated documents.
const (
	// MaxDocBytes bounds one document (compacted JSON).
	MaxDocBytes = 256 << 10
	// MaxDocs bounds the number of documents.
	MaxDocs = 1024
	// MaxDocsBytes bounds the documents' total size.
	MaxDocsBytes = 16 << 20
	// MaxLimits bounds a policy's limits (the API's bound).
	MaxLimits = 4096
)

var docNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateDocKey checks a document key: a known prefix and a valid name.
func ValidateDocKey(key string) error {
	for _, p := range []string{DocPolicy, DocLabels, DocOp} {
		if name, ok := strings.CutPrefix(key, p); ok {
			if !docNameRE.MatchString(name) {
				return fmt.Errorf("doc key %q: the name after %q must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", trunc(key), p)
			}
			return nil
		}
	}
	return fmt.Errorf("doc key %q: must start with %q, %q or %q", trunc(key), DocPolicy, DocLabels, DocOp)
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// normalizeDoc returns doc compacted with HTML characters escaped, the form
// encoding/json gives a json.RawMessage when it encodes a command or a
// snapshot, so that every replica and every restore holds the same bytes.
func normalizeDoc(doc []byte) ([]byte, error) {
	if len(doc) > MaxDocBytes {
		return nil, fmt.Errorf("doc: %d bytes, at most %d", len(doc), MaxDocBytes)
	}
	if !json.Valid(doc) {
		return nil, errors.New("doc: not valid JSON")
	}
	var c, out bytes.Buffer
	if err := json.Compact(&c, doc); err != nil {
		return nil, fmt.Errorf("doc: %w", err)
	}
	if c.Len() == 0 || c.Bytes()[0] != '{' {
		return nil, errors.New("doc: must be a JSON object")
	}
	json.HTMLEscape(&out, c.Bytes())
	if out.Len() > MaxDocBytes {
		return nil, fmt.Errorf("doc: %d bytes once compacted and escaped, at most %d", out.Len(), MaxDocBytes)
	}
	return out.Bytes(), nil
}

func applyPutDoc(s *State, c Command) error {
	cmd := c.(PutDoc)
	if err := ValidateDocKey(cmd.Key); err != nil {
		return err
	}
	doc, err := normalizeDoc(cmd.Doc)
	if err != nil {
		return err
	}
	old, exists := s.Docs[cmd.Key]
	if !exists && len(s.Docs) >= MaxDocs {
		return fmt.Errorf("doc key %q: the state already holds %d documents, at most %d", cmd.Key, len(s.Docs), MaxDocs)
	}
	total := len(doc) - len(old)
	for _, d := range s.Docs {
		total += len(d)
	}
	if total > MaxDocsBytes {
		return fmt.Errorf("doc: the documents would take %d bytes, at most %d", total, MaxDocsBytes)
	}
	if s.Docs == nil {
		s.Docs = map[string]json.RawMessage{}
	}
	// a new slice: documents are shared by the state's copies, never edited
	s.Docs[cmd.Key] = doc
	return nil
}

func applyDeleteDoc(s *State, c Command) error {
	key := c.(DeleteDoc).Key
	if err := ValidateDocKey(key); err != nil {
		return err
	}
	delete(s.Docs, key)
	if len(s.Docs) == 0 {
		s.Docs = nil
	}
	return nil
}

func applySetDrain(s *State, c Command) error {
	cmd := c.(SetDrain)
	if s.Topology == nil {
		return errors.New("drain.dc: no topology committed yet")
	}
	if s.Topology.Index(cmd.DC) < 0 {
		return fmt.Errorf("drain.dc: %q is not a datacenter of the topology", trunc(cmd.DC))
	}
	i, found := slices.BinarySearch(s.Drained, cmd.DC)
	if found == cmd.Drain {
		return nil // already so
	}
	next := slices.Clone(s.Drained)
	if cmd.Drain {
		next = slices.Insert(next, i, cmd.DC)
		if err := checkDrained(s.Topology, next); err != nil {
			return err
		}
	} else {
		next = slices.Delete(next, i, i+1)
	}
	if len(next) == 0 {
		next = nil
	}
	s.Drained = next
	return nil
}

// DrainRefusedError is DrainOperation's refusal of the drain itself
// (unknown DC, the S-CSCF DC, the last DC not drained).
type DrainRefusedError struct{ Reason string }

func (e *DrainRefusedError) Error() string { return "fsm: drain refused: " + e.Reason }

func applyDrainOperation(s *State, c Command) error {
	cmd := c.(DrainOperation)
	if cmd.KeepOps < 0 {
		return fmt.Errorf("drain operation keepOps %d: must not be negative", cmd.KeepOps)
	}
	next := *s
	next.Docs = maps.Clone(s.Docs)
	if err := applySetDrain(&next, SetDrain{DC: cmd.DC, Drain: cmd.Drain}); err != nil {
		return &DrainRefusedError{Reason: strings.TrimPrefix(err.Error(), "drain.dc: ")}
	}
	for _, k := range slices.Sorted(maps.Keys(cmd.Records)) {
		if !strings.HasPrefix(k, DocOp) {
			return fmt.Errorf("drain operation record %q: must start with %q", trunc(k), DocOp)
		}
		if err := applyPutDoc(&next, PutDoc{Key: k, Doc: cmd.Records[k]}); err != nil {
			return err
		}
	}
	if cmd.KeepOps > 0 {
		var ops []string
		for k := range next.Docs {
			if strings.HasPrefix(k, DocOp) {
				ops = append(ops, k)
			}
		}
		slices.SortFunc(ops, func(a, b string) int { return cmp.Or(OpSeq(a)-OpSeq(b), strings.Compare(a, b)) })
		for _, k := range ops[:max(0, len(ops)-cmd.KeepOps)] {
			delete(next.Docs, k)
		}
	}
	*s = next
	return nil
}

// OpSeq is the number ending an operation record's key or id
// ("op/drain-12" → 12), 0 if none.
func OpSeq(key string) int {
	i := strings.LastIndexByte(key, '-')
	n, err := strconv.Atoi(key[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// checkDrained checks a drained set against a topology: sorted, unique,
// known DCs, not the S-CSCF DC, and at least one DC not drained.
func checkDrained(t *Topology, drained []string) error {
	for i, dc := range drained {
		if i > 0 && drained[i-1] >= dc {
			return fmt.Errorf("drain.dc: drained datacenters %q are not sorted and unique", drained)
		}
		if t.Index(dc) < 0 {
			return fmt.Errorf("drain.dc: drained datacenter %q is not a datacenter of the topology", trunc(dc))
		}
		if dc == t.SCSCFDC {
			return fmt.Errorf("drain.dc: %q hosts the S-CSCF and cannot be drained", dc)
		}
	}
	if len(drained) > 0 && len(drained) >= len(t.DCs) {
		return fmt.Errorf("drain.dc: every datacenter would be drained; at least one must stay undrained")
	}
	return nil
}

// ValidateLimits checks the policy's limits against a topology (nil: none
// committed yet, so no limit can be checked): known VNF names, a known DC
// when set, 0 ≤ Min, Max 0 (no upper bound) or ≥ Min, no (DC, VNF) twice,
// Min and Max within instbound.PerDC (what a DC can route and run).
func (p *Policy) ValidateLimits(t *Topology) error { return p.validateLimits(t, true) }

// validateLimits is ValidateLimits; bounded false skips the instbound check
// (a snapshot written before the bound existed must still restore: the
// local controllers refuse an out-of-bound limit themselves).
func (p *Policy) validateLimits(t *Topology, bounded bool) error {
	if len(p.Limits) == 0 {
		return nil
	}
	if len(p.Limits) > MaxLimits {
		return fmt.Errorf("policy.limits: %d limits, at most %d", len(p.Limits), MaxLimits)
	}
	if t == nil {
		return errors.New("policy.limits: no topology committed yet to check the limits against")
	}
	names := map[string]bool{t.PCSCF.Name: false, t.SCSCF.Name: false} // name → data plane
	for _, s := range t.Stages {
		names[s.Name] = true
	}
	type key struct{ dc, vnf string }
	seen := map[key]int{}
	for i, l := range p.Limits {
		f := fmt.Sprintf("policy.limits[%d]", i)
		dp, known := names[l.VNF]
		switch {
		case !known:
			return fmt.Errorf("%s.vnf: %q is not a VNF of the topology", f, trunc(l.VNF))
		case l.DC != "" && t.Index(l.DC) < 0:
			return fmt.Errorf("%s.dc: %q is not a datacenter of the topology", f, trunc(l.DC))
		case l.Min < 0:
			return fmt.Errorf("%s.min: must not be negative, got %d", f, l.Min)
		case l.Max < 0 || (l.Max > 0 && l.Max < l.Min):
			return fmt.Errorf("%s.max: must be 0 (no upper bound) or ≥ min (%d), got %d", f, l.Min, l.Max)
		}
		if bounded {
			if err := instbound.Check(f+".min", l.Min, len(t.DCs), dp); err != nil {
				return err
			}
			if err := instbound.Check(f+".max", l.Max, len(t.DCs), dp); err != nil {
				return err
			}
		}
		if j, dup := seen[key{l.DC, l.VNF}]; dup {
			return fmt.Errorf("%s: repeats policy.limits[%d] (same dc and vnf)", f, j)
		}
		seen[key{l.DC, l.VNF}] = i
	}
	return nil
}
