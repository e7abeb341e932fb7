package ovs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// LockDir holds one lock file per name prefix in use on this machine
// (<prefix>.lock, flock(2)-locked by the process that uses the prefix). The
// kernel drops a lock when its process dies, so a prefix whose file is not
// locked belongs to no live run: its namespaces and daemons are leftovers.
// It is under /run (a tmpfs, like the namespaces' /run/netns), so a reboot
// clears both together.
const LockDir = "/run/ims-orch-ovs"

// ErrPrefixInUse is returned when another live run (another process, or
// another Claim of this one) holds the prefix: nothing of it was touched.
// The error names the holder its lock file records (PID, run directory).
var ErrPrefixInUse = errors.New("prefix in use by another live run")

// Claim is a run's hold on a name prefix: while it is held, no other Start or
// Claim on this machine uses the prefix, and CleanStale leaves the prefix's
// objects alone. Release ends it.
type Claim struct {
	prefix string
	mu     sync.Mutex
	f      *os.File // nil once released
}

// Prefix returns the claimed prefix.
func (c *Claim) Prefix() string { return c.prefix }

func lockPath(prefix string) string { return filepath.Join(LockDir, prefix+".lock") }

// ClaimPrefix claims prefix (see Config.Prefix for its form) for this
// process, or fails with ErrPrefixInUse when a live run holds it.
func ClaimPrefix(prefix string) (*Claim, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("prefix: %q must be %s", prefix, prefixForm)
	}
	f, err := lockFile(lockPath(prefix))
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	return &Claim{prefix: prefix, f: f}, nil
}

// lockFile opens (creating) path and takes its exclusive lock without
// waiting. A file another holder unlinked between our open and our lock
// (Release, CleanStale) is not the prefix's lock any more: try again on the
// file now at path.
func lockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	for try := 0; try < 10; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder := readHolder(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w (holder: %s)", ErrPrefixInUse, holder)
			}
			return nil, err
		}
		var held, now syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) == nil && syscall.Stat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			writeHolder(f, "")
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock file %s: replaced under us 10 times", path)
}

// writeHolder records who holds the lock in its file ("pid=N", then
// " dir=<run dir>" once known), which a refused claimant names in its
// error. Best effort: the lock, not the text, is the claim.
func writeHolder(f *os.File, dir string) {
	line := fmt.Sprintf("pid=%d", os.Getpid())
	if dir != "" {
		line += " dir=" + dir
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(line+"\n"), 0)
}

// readHolder reads the holder a lock file records ("unknown" when empty:
// the holder has not written it yet, or is older code).
func readHolder(f *os.File) string {
	b := make([]byte, 512)
	n, _ := f.ReadAt(b, 0)
	if h := strings.TrimSpace(string(b[:n])); h != "" {
		return h
	}
	return "unknown"
}

// setDir records the run directory of the claim's holder in its lock file.
func (c *Claim) setDir(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		writeHolder(c.f, dir)
	}
}

// Held reports whether the claim still holds its prefix (not released,
// not lost).
func (c *Claim) Held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f != nil
}

// Release gives the prefix up (its lock file is removed). Releasing twice
// does nothing.
func (c *Claim) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return
	}
	_ = os.Remove(lockPath(c.prefix)) // still locked: a new claimant makes a new file
	c.f.Close()
	c.f = nil
}

// ClaimFree claims a prefix no live run holds: lead (one lower-case letter)
// followed by four random lower-case letters or digits, so two runs (two
// checkouts testing at once) never share names, and names stay within the
// 15 bytes of a Linux interface name.
func ClaimFree(lead byte) (*Claim, error) {
	if lead < 'a' || lead > 'z' {
		return nil, fmt.Errorf("lead: %q must be a lower-case letter", lead)
	}
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	for try := 0; try < 32; try++ {
		b := []byte{lead, 0, 0, 0, 0}
		for i := 1; i < len(b); i++ {
			b[i] = chars[rand.IntN(len(chars))]
		}
		c, err := ClaimPrefix(string(b))
		if errors.Is(err, ErrPrefixInUse) {
			continue
		}
		return c, err
	}
	return nil, fmt.Errorf("no free prefix starting with %q after 32 tries: %w", lead, ErrPrefixInUse)
}

// AllPrefixes matches every prefix (CleanStale of the whole machine).
func AllPrefixes(string) bool { return true }

// CleanStale removes what runs that died without Stop left (a test binary
// killed by its timeout, a crashed daemon): for each prefix with a lock file
// in LockDir that match accepts and no live process holds, it kills the
// processes inside the prefix's network namespaces (that run's ovsdb-server,
// ovs-vswitchd and DP forwarders), deletes those namespaces (their veths go
// with them) and the lock file. Prefixes held by live runs are not touched,
// and nothing is matched beyond a stale run's own prefix. It returns the
// prefixes cleaned. `go run ./scripts/ovsclean` runs it on AllPrefixes; a
// test passes only its own prefixes, so it neither races another run's
// clean-up nor fails on another run's leftovers.
func CleanStale(ctx context.Context, match func(prefix string) bool) ([]string, error) {
	ents, err := os.ReadDir(LockDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cleaned []string
	var errs []error
	for _, e := range ents {
		prefix, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || !prefixRE.MatchString(prefix) || !match(prefix) {
			continue
		}
		c, err := ClaimPrefix(prefix)
		if errors.Is(err, ErrPrefixInUse) {
			continue // a live run's
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := DeleteNetns(ctx, prefix); err != nil {
			errs = append(errs, fmt.Errorf("prefix %s: %w", prefix, err))
			c.mu.Lock()
			c.f.Close() // keep the file: the next CleanStale tries again
			c.f = nil
			c.mu.Unlock()
			continue
		}
		c.Release()
		cleaned = append(cleaned, prefix)
	}
	sort.Strings(cleaned)
	return cleaned, errors.Join(errs...)
}
