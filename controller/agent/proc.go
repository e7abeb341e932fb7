package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ProcStat is what the agent reads from /proc/PID/stat.
type ProcStat struct {
	Pid          int
	Comm         string
	State        byte
	PPid         int
	UTime, STime uint64 // clock ticks (fields 14 and 15)
}

// ParseStat parses one /proc/PID/stat line. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	var s ProcStat
	open := bytes.IndexByte(b, '(')
	closeIdx := bytes.LastIndexByte(b, ')')
	if open < 1 || closeIdx < open {
		return s, errors.New("stat: no \"pid (comm)\" prefix")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil || pid <= 0 {
		return s, fmt.Errorf("stat: pid %q: not a positive integer", b[:open])
	}
	s.Pid = pid
	s.Comm = string(b[open+1 : closeIdx])
	f := strings.Fields(string(b[closeIdx+1:]))
	// f[0] is field 3 (state): field n is f[n-3]
	if len(f) < 13 {
		return s, fmt.Errorf("stat: %d fields after comm, want at least 13", len(f))
	}
	if len(f[0]) != 1 {
		return s, fmt.Errorf("stat: state %q: not one character", f[0])
	}
	s.State = f[0][0]
	if s.PPid, err = strconv.Atoi(f[1]); err != nil {
		return s, fmt.Errorf("stat: ppid %q: %v", f[1], err)
	}
	if s.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return s, fmt.Errorf("stat: utime %q: %v", f[11], err)
	}
	if s.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return s, fmt.Errorf("stat: stime %q: %v", f[12], err)
	}
	return s, nil
}

// ProcMem is what the agent reads from /proc/PID/status, in bytes.
type ProcMem struct {
	RSS, RssAnon, RssShmem int64
}

// ParseStatus reads VmRSS, RssAnon and RssShmem (kB) from /proc/PID/status.
// VmRSS is required; the other two are zero on kernels that lack them.
func ParseStatus(b []byte) (ProcMem, error) {
	var m ProcMem
	seen := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
			seen = true
		case "RssAnon":
			dst = &m.RssAnon
		case "RssShmem":
			dst = &m.RssShmem
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return ProcMem{}, fmt.Errorf("status: %s: %q: want \"N kB\"", key, strings.TrimSpace(val))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return ProcMem{}, fmt.Errorf("status: %s: %q: not a size in kB", key, f[0])
		}
		*dst = n * 1024
	}
	if err := sc.Err(); err != nil {
		return ProcMem{}, fmt.Errorf("status: %w", err)
	}
	if !seen {
		return ProcMem{}, errors.New("status: VmRSS: missing")
	}
	return m, nil
}

// ParseChildren parses /proc/PID/task/TID/children: pids separated by spaces.
func ParseChildren(b []byte) ([]int, error) {
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("children: %q: not a pid", f)
		}
		out = append(out, n)
	}
	return out, nil
}
