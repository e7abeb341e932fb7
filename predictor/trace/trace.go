// Package trace owns the workload trace CSV format used by predictor
// backtests and the generator of the synthetic traces shipped in
// testdata/traces (the paper's ramps, a diurnal day from a real hourly
// profile, a diurnal sine, steps and bursts). It is pure: it reads and writes
// through io.Reader/io.Writer and draws randomness from a seeded generator of
// its own, so a seed always gives the same bytes.
//
// Format (one value per scaling interval, 50 s by default):
//
//	# free-text comment lines, anywhere
//	interval,value
//	0,1.020
//	1,1.140
//
// interval counts from 0 without gaps; value is finite and in
// [0, predictor.MaxValue]. Blank lines
// and a trailing CR are ignored.
package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/predictor"
)

// Header is the required column line.
const Header = "interval,value"

// MaxValues bounds the rows Parse accepts.
const MaxValues = 10_000_000

// Trace is one series of per-interval values.
type Trace struct {
	// Comments are the comment lines without their leading "#" and one space.
	Comments []string
	Values   []float64
}

// Parse reads a trace CSV. Errors name the line and the reason.
func Parse(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	t := &Trace{}
	line, header := 0, false
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "#"):
			t.Comments = append(t.Comments, strings.TrimPrefix(s[1:], " "))
			continue
		case !header:
			if strings.ReplaceAll(s, " ", "") != Header {
				return nil, fmt.Errorf("trace: line %d: header %q: want %q", line, clip(s), Header)
			}
			header = true
			continue
		}
		f := strings.Split(s, ",")
		if len(f) != 2 {
			return nil, fmt.Errorf("trace: line %d: %d fields: want 2 (interval,value)", line, len(f))
		}
		i, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil {
			return nil, fmt.Errorf("trace: line %d: interval %q: not an integer", line, clip(f[0]))
		}
		if i != len(t.Values) {
			return nil, fmt.Errorf("trace: line %d: interval %d: want %d (intervals count from 0 without gaps)", line, i, len(t.Values))
		}
		if len(t.Values) == MaxValues {
			return nil, fmt.Errorf("trace: line %d: more than %d values", line, MaxValues)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("trace: line %d: value %q: not a number", line, clip(f[1]))
		}
		if err := predictor.CheckValue(v); err != nil {
			return nil, fmt.Errorf("trace: line %d: value: %w", line, err)
		}
		t.Values = append(t.Values, v)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("trace: line %d: longer than 64 KiB", line+1)
		}
		return nil, fmt.Errorf("trace: reading line %d: %w", line+1, err)
	}
	if !header {
		return nil, fmt.Errorf("trace: no header line %q", Header)
	}
	if len(t.Values) == 0 {
		return nil, errors.New("trace: no values after the header")
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// WriteCSV writes t in the trace format, values with 3 decimals.
func (t *Trace) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, c := range t.Comments {
		if strings.Contains(c, "\n") {
			return fmt.Errorf("trace: comment %q contains a line break", clip(c))
		}
		bw.WriteString("# " + c + "\n")
	}
	bw.WriteString(Header + "\n")
	buf := make([]byte, 0, 32)
	for i, v := range t.Values {
		if err := predictor.CheckValue(v); err != nil {
			return fmt.Errorf("trace: value %d: %w", i, err)
		}
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, v, 'f', 3, 64)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}
