package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Per-node credentials of workload reporters (issue 19): instead of the one
// protocol token every node holds, each reporting node gets its own token,
// and the global node accepts its reports only for the datacenters it runs.
// The file (role.reportersFile) lists SHA-256 hashes, never tokens:
//
//	reporters:
//	  - name: node2
//	    dcs: [hong-kong]
//	    sha256: 9f86d081884c...   # hex SHA-256 of node2's token (64 characters)

// MaxReportersBytes bounds a reporters file.
const MaxReportersBytes = 1 << 20

// ReporterCred is one reporting node.
type ReporterCred struct {
	Name   string   `yaml:"name"`
	DCs    []string `yaml:"dcs"`
	SHA256 string   `yaml:"sha256"`
}

// ReporterCreds maps a token's hash to its reporter.
type ReporterCreds struct {
	by map[[sha256.Size]byte]ReporterCred
}

// ParseReporterCreds parses a reporters file; errors name the field.
func ParseReporterCreds(data []byte) (*ReporterCreds, error) {
	if len(data) > MaxReportersBytes {
		return nil, fmt.Errorf("reporters: %d bytes, at most %d", len(data), MaxReportersBytes)
	}
	var doc struct {
		Reporters []ReporterCred `yaml:"reporters"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("reporters: %w", err)
	}
	if len(doc.Reporters) == 0 {
		return nil, errors.New("reporters: at least one reporter is needed")
	}
	c := &ReporterCreds{by: map[[sha256.Size]byte]ReporterCred{}}
	names := map[string]bool{}
	for i, r := range doc.Reporters {
		f := fmt.Sprintf("reporters[%d]", i)
		if r.Name == "" || names[r.Name] {
			return nil, fmt.Errorf("%s.name: %q is empty or repeated", f, r.Name)
		}
		if err := CheckReporterID(r.Name); err != nil {
			// the name is the reporter ID of its reports (WorkloadHandler)
			return nil, fmt.Errorf("%s.name: %v (it is the reporter ID of the reports made with the token)", f, err)
		}
		if len(r.DCs) == 0 {
			return nil, fmt.Errorf("%s.dcs: at least one datacenter", f)
		}
		names[r.Name] = true
		raw, err := hex.DecodeString(strings.TrimSpace(r.SHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s.sha256: must be the 64 hex characters of a SHA-256 hash", f)
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if _, dup := c.by[h]; dup {
			return nil, fmt.Errorf("%s.sha256: the same token as another reporter", f)
		}
		c.by[h] = r
	}
	return c, nil
}

// LoadReporterCreds reads a reporters file.
func LoadReporterCreds(path string) (*ReporterCreds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseReporterCreds(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// lookup returns the reporter a token belongs to (its hash is looked up,
// so no token is compared byte by byte).
func (c *ReporterCreds) lookup(token string) (ReporterCred, bool) {
	r, ok := c.by[sha256.Sum256([]byte(token))]
	return r, ok
}

// allows reports whether a reporter may report for dc.
func (r ReporterCred) allows(dc string) bool { return slices.Contains(r.DCs, dc) }
