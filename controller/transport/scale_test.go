package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type recScaler struct {
	calls []ScaleCommand
	err   error
}

func (s *recScaler) ScaleFor(vnf string, delta int, detail string, holdFor time.Duration) (int, error) {
	s.calls = append(s.calls, ScaleCommand{VNF: vnf, Delta: delta, Detail: detail, HoldFor: holdFor})
	if s.err != nil {
		return 0, s.err
	}
	return 3 + delta, nil
}

func (s *recScaler) Release(vnf, detail string) (bool, error) {
	s.calls = append(s.calls, ScaleCommand{VNF: vnf, Detail: detail, Release: true})
	return true, s.err
}

func TestScaleOverHTTP(t *testing.T) {
	sc := &recScaler{}
	h, err := NewScaleHandler(sc, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dc/tokyo"+ScalePath, http.StripPrefix("/dc/tokyo", h))
	srv := httptest.NewServer(mux) // 127.0.0.1:0
	defer srv.Close()
	client := func(token string) *HTTP {
		tr, err := NewHTTP(HTTPConfig{Endpoints: map[string]string{"tokyo": srv.URL + "/dc/tokyo"}, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr
	}
	ctx := context.Background()
	tr := client("s3cret")
	got, err := tr.Scale(ctx, "tokyo", ScaleCommand{VNF: "firewall", Delta: 2, Detail: "op-1"})
	if err != nil || got != 5 {
		t.Fatalf("scale: target %d, err %v; want 5", got, err)
	}
	if len(sc.calls) != 1 || sc.calls[0] != (ScaleCommand{VNF: "firewall", Delta: 2, Detail: "op-1"}) {
		t.Fatalf("controller saw %+v", sc.calls)
	}
	sc.err = errors.New("local: scale firewall out in tokyo: the datacenter is being drained")
	if _, err := tr.Scale(ctx, "tokyo", ScaleCommand{VNF: "firewall", Delta: 1}); err == nil || !strings.Contains(err.Error(), "drained") {
		t.Fatalf("refused scale: %v, want the controller's reason", err)
	}
	if _, err := client("wrong").Scale(ctx, "tokyo", ScaleCommand{VNF: "firewall", Delta: 1}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v, want 401", err)
	}
	if _, err := tr.Scale(ctx, "tokyo", ScaleCommand{VNF: "firewall"}); err == nil || !strings.Contains(err.Error(), "delta") {
		t.Fatalf("zero delta: %v, want 400 naming delta", err)
	}
	if _, err := tr.Scale(ctx, "osaka", ScaleCommand{VNF: "firewall", Delta: 1}); err == nil {
		t.Fatal("unknown DC accepted")
	}
	if len(sc.calls) != 2 {
		t.Fatalf("%d calls reached the controller, want 2 (refused requests must not)", len(sc.calls))
	}
	sc.err = nil
	hold := ScaleCommand{VNF: "ids", Delta: -1, Detail: "op-2", HoldFor: time.Hour}
	if _, err := tr.Scale(ctx, "tokyo", hold); err != nil || sc.calls[2] != hold {
		t.Fatalf("held scale: %v, controller saw %+v", err, sc.calls[2:])
	}
	rel := ScaleCommand{VNF: "ids", Detail: "op-3", Release: true}
	if _, err := tr.Scale(ctx, "tokyo", rel); err != nil || sc.calls[3] != rel {
		t.Fatalf("release: %v, controller saw %+v", err, sc.calls[3:])
	}
}

func TestParseScale(t *testing.T) {
	tests := []struct{ name, body, err string }{
		{"ok", `{"vnf":"ids","delta":-2}`, ""},
		{"no vnf", `{"delta":1}`, "vnf: empty"},
		{"zero", `{"vnf":"ids","delta":0}`, "delta"},
		{"huge", `{"vnf":"ids","delta":100000}`, "delta"},
		{"unknown field", `{"vnf":"ids","delta":1,"x":1}`, "unknown field"},
		{"trailing", `{"vnf":"ids","delta":1}{}`, "trailing"},
		{"not json", `vnf=ids`, "request body"},
		{"hold", `{"vnf":"ids","delta":2,"holdFor":3600000000000}`, ""},
		{"negative hold", `{"vnf":"ids","delta":2,"holdFor":-1}`, "holdFor"},
		{"release", `{"vnf":"ids","release":true}`, ""},
		{"release with delta", `{"vnf":"ids","release":true,"delta":1}`, "release"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScale(strings.NewReader(tc.body))
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

func FuzzParseScale(f *testing.F) {
	f.Add(`{"vnf":"ids","delta":-2,"detail":"x"}`)
	f.Add(`{"vnf":"","delta":1}`)
	f.Add(`{"vnf":"ids","delta":1e9}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := ParseScale(strings.NewReader(body))
		if err == nil && (c.VNF == "" || (c.Delta == 0) != c.Release || c.Delta > maxScaleDelta || c.Delta < -maxScaleDelta || c.HoldFor < 0 || c.HoldFor > MaxHold) {
			t.Fatalf("accepted %+v", c)
		}
	})
}
