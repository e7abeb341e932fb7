package daemon

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// /metrics access (issue 19): with api.metricsTokenFile the scraper must
// present "Authorization: Bearer <token>" (Prometheus: authorization.
// credentials_file); without it /metrics stays open, as before, for a node
// whose API listens on loopback only (docs/operations.md "Metrics").

// metricsHandler is /metrics behind the token when one is configured.
func (d *Daemon) metricsHandler() (http.Handler, error) {
	h := promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{})
	f := d.cfg.API.MetricsTokenFile
	if f == "" {
		return h, nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("api.metricsTokenFile: %w", err)
	}
	tok := []byte(strings.TrimSpace(string(b)))
	if len(tok) < 16 {
		return nil, fmt.Errorf("api.metricsTokenFile %s: the token must have at least 16 characters", f)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), tok) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ims-orch metrics"`)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing or wrong bearer token for /metrics (api.metricsTokenFile)"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
