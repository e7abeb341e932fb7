package trace

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shipped lists testdata/traces and the Config that generates each.
var shipped = map[string]Config{
	"ramp.csv":         {Kind: KindRamp, Seed: 1},
	"diurnal.csv":      {Kind: KindDiurnal, Seed: 1},
	"sine.csv":         {Kind: KindSine, Seed: 1},
	"step.csv":         {Kind: KindStep, Seed: 1},
	"burst.csv":        {Kind: KindBurst, Seed: 1},
	"ramp-x100.csv":    {Kind: KindRamp, Seed: 1, Scale: 100},
	"diurnal-x100.csv": {Kind: KindDiurnal, Seed: 1, Scale: 100},
}

// TestShippedTracesReproduce: every shipped trace is exactly what the
// generator writes for its Config, and its "regenerate" comment names it.
func TestShippedTracesReproduce(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "traces", "*.csv"))
	if len(files) != len(shipped) {
		t.Errorf("testdata/traces has %d CSV files, this test knows %d", len(files), len(shipped))
	}
	for name, c := range shipped {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "traces", name))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Generate(c)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := tr.WriteCSV(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("generated trace differs from the shipped file (regenerate with the command in its header)")
			}
			parsed, err := Parse(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			if len(parsed.Values) != len(tr.Values) {
				t.Fatalf("parsed %d values, generated %d", len(parsed.Values), len(tr.Values))
			}
			for i := range parsed.Values {
				if parsed.Values[i] != tr.Values[i] {
					t.Fatalf("value %d: parsed %v, generated %v", i, parsed.Values[i], tr.Values[i])
				}
			}
		})
	}
}

func TestGenerateShapes(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(k, func(t *testing.T) {
			a, truth, err := GenerateWithTruth(Config{Kind: k, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Generate(Config{Kind: k, Seed: 5})
			c, _ := Generate(Config{Kind: k, Seed: 6})
			same, differ := true, false
			for i := range a.Values {
				same = same && a.Values[i] == b.Values[i]
				differ = differ || a.Values[i] != c.Values[i]
				if a.Values[i] < 0 || math.IsNaN(a.Values[i]) {
					t.Fatalf("value %d = %v", i, a.Values[i])
				}
			}
			if !same || !differ {
				t.Errorf("same seed same values: %v; other seed differs: %v", same, differ)
			}
			lo, hi := math.Inf(1), 0.0
			for _, v := range truth {
				lo, hi = min(lo, v), max(hi, v)
			}
			want := map[string][2]float64{ // expected rate range, users/s
				KindRamp: {1, 15}, KindDiurnal: {15 * 0.027 / 0.1333 * 0.9, 15 * 1.1}, KindSine: {4, 16},
				KindStep: {2, 15}, KindBurst: {8, 32},
			}[k]
			if lo < want[0]-1e-9 || hi > want[1]+1e-9 {
				t.Errorf("true rate in [%v, %v], want within %v", lo, hi, want)
			}
			if k == KindRamp && (lo != 1 || hi != 15) {
				t.Errorf("ramp true rate in [%v, %v], want exactly [1, 15]", lo, hi)
			}
		})
	}
}

func TestGenerateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		err  string
	}{
		{"kind", Config{Kind: "wave"}, `kind "wave": unknown`},
		{"intervals", Config{Kind: KindRamp, Intervals: -1}, "intervals -1"},
		{"interval seconds", Config{Kind: KindRamp, IntervalSeconds: -5}, "interval seconds -5"},
		{"scale", Config{Kind: KindRamp, Scale: -1}, "scale -1"},
		{"too long", Config{Kind: KindRamp, Intervals: 1_000_000, IntervalSeconds: 50}, "longer than 10000000 s"},
		{"noise", Config{Kind: KindSine, Noise: 2}, "noise 2"},
		{"profile length", Config{Kind: KindDiurnal, Profile: []float64{1, 2}}, "2 hours: want 24"},
		{"profile zero", Config{Kind: KindDiurnal, Profile: make([]float64, 24)}, "every share is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     []float64
		err      string
	}{
		{name: "plain", in: "interval,value\n0,1\n1,2.5\n", want: []float64{1, 2.5}},
		{name: "comments crlf blanks", in: "# a\r\n\r\ninterval, value\r\n0,0\r\n# mid\r\n1, 3\r\n\n", want: []float64{0, 3}},
		{name: "no trailing newline", in: "interval,value\n0,4", want: []float64{4}},
		{name: "empty", in: "", err: "no header line"},
		{name: "only header", in: "interval,value\n", err: "no values"},
		{name: "bad header", in: "t,v\n0,1\n", err: `line 1: header "t,v"`},
		{name: "gap", in: "interval,value\n0,1\n2,1\n", err: "line 3: interval 2: want 1"},
		{name: "fields", in: "interval,value\n0,1,2\n", err: "line 2: 3 fields"},
		{name: "interval", in: "interval,value\nx,1\n", err: `interval "x": not an integer`},
		{name: "value", in: "interval,value\n0,abc\n", err: `value "abc": not a number`},
		{name: "negative", in: "interval,value\n0,-1\n", err: "line 2: value: invalid value: -1 is negative"},
		{name: "nan", in: "interval,value\n0,NaN\n", err: "invalid value: NaN"},
		{name: "inf", in: "interval,value\n0,inf\n", err: "not finite"},
		{name: "too large", in: "interval,value\n0,1e16\n", err: "above the limit 1e+15"},
		{name: "long line", in: "interval,value\n0," + strings.Repeat("1", 70000) + "\n", err: "line 2: longer than 64 KiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Parse(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Values) != len(tc.want) {
				t.Fatalf("values %v, want %v", tr.Values, tc.want)
			}
			for i := range tc.want {
				if tr.Values[i] != tc.want[i] {
					t.Fatalf("values %v, want %v", tr.Values, tc.want)
				}
			}
		})
	}
}

func TestWriteCSVRejects(t *testing.T) {
	var b bytes.Buffer
	if err := (&Trace{Values: []float64{1, -1}}).WriteCSV(&b); err == nil || !strings.Contains(err.Error(), "value 1") {
		t.Errorf("negative value: %v", err)
	}
	if err := (&Trace{Comments: []string{"a\nb"}, Values: []float64{1}}).WriteCSV(&b); err == nil {
		t.Error("comment with a newline accepted")
	}
}

func TestParseProfile(t *testing.T) {
	var ok strings.Builder
	ok.WriteString("hour,share\n")
	for h := range 24 {
		ok.WriteString(strings.Repeat(" ", h%2) + itoa(h) + ", 0.5\n")
	}
	p, err := ParseProfile(strings.NewReader(ok.String()))
	if err != nil || len(p) != 24 || p[23] != 0.5 {
		t.Fatalf("ParseProfile = %v, %v", p, err)
	}
	a, err := ParseProfile(strings.NewReader(audioCSV))
	if err != nil || a[11] != 0.1333 {
		t.Fatalf("embedded audio profile: %v, %v", a, err)
	}
	for _, tc := range []struct{ in, err string }{
		{"0,1\n", "1 hours: want 24"},
		{"0,1\n2,1\n", "hour 2: want 1"},
		{"0,-1\n", "must be a finite number ≥ 0"},
		{"0,1,2\n", "3 fields"},
		{"0,1\nx,2\n", `hour "x": not an integer`},
	} {
		if _, err := ParseProfile(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseProfile(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// FuzzParse: Parse never panics; what it accepts is finite, ≥ 0, and
// survives a WriteCSV/Parse round trip to within the 3-decimal rounding.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"interval,value\n0,1\n1,2.5\n", "# c\ninterval,value\n0,0\n", "interval,value\n0,1e15\n",
		"interval,value\n0,0x1p-2\n", "interval,value\n0,-0\n", "", "interval,value\n0,1,2\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := tr.WriteCSV(&b); err != nil {
			t.Fatalf("WriteCSV of a parsed trace: %v", err)
		}
		back, err := Parse(&b)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b.String())
		}
		if len(back.Values) != len(tr.Values) {
			t.Fatalf("round trip: %d values, want %d", len(back.Values), len(tr.Values))
		}
		for i, v := range tr.Values {
			if math.Abs(back.Values[i]-v) > 0.0005+1e-12*v {
				t.Fatalf("value %d: %v → %v", i, v, back.Values[i])
			}
		}
	})
}

// FuzzParseProfile: ParseProfile never panics and returns 24 valid shares or
// an error.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(audioCSV))
	f.Add([]byte("hour,share\n0,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := checkProfile(p); err != nil {
			t.Fatalf("accepted an invalid profile: %v", err)
		}
	})
}
