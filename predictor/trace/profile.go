package trace

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ParseProfile reads an hourly profile: 24 lines "hour, share" with hours 0..23
// in order and finite shares ≥ 0, at least one > 0. An optional header line
// (first field not a number) and blank or "#" lines are skipped.
func ParseProfile(r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), 4096)
	var out []float64
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, ",")
		if len(f) != 2 {
			return nil, fmt.Errorf("profile: line %d: %d fields: want 2 (hour, share)", line, len(f))
		}
		h, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil {
			if len(out) == 0 && line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("profile: line %d: hour %q: not an integer", line, clip(f[0]))
		}
		if h != len(out) {
			return nil, fmt.Errorf("profile: line %d: hour %d: want %d", line, h, len(out))
		}
		if h > 23 {
			return nil, fmt.Errorf("profile: line %d: hour %d: more than 24 hours", line, h)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("profile: line %d: share %q: must be a finite number ≥ 0", line, clip(f[1]))
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("profile: line %d: %w", line+1, err)
	}
	return out, checkProfile(out)
}

func checkProfile(p []float64) error {
	if len(p) != 24 {
		return fmt.Errorf("profile: %d hours: want 24", len(p))
	}
	peak := 0.0
	for h, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("profile: hour %d: share %v must be a finite number ≥ 0", h, v)
		}
		peak = max(peak, v)
	}
	if peak == 0 {
		return fmt.Errorf("profile: every share is 0")
	}
	return nil
}
