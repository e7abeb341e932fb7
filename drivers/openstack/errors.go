package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ims-orch/ims-orch/drivers"
)

// errTransient marks failures worth retrying: 5xx, 429, 409 (a server busy
// with another task) and network errors or per-request timeouts.
var errTransient = errors.New("transient cloud error")

// errConfig marks failures no retry can mend, because the request could
// not reach a service it can trust: a certificate the CA bundle does not
// verify, a host DNS does not know, a URL the HTTP client cannot use.
var errConfig = errors.New("configuration error")

// errBuildFailed: a server went to ERROR for a reason other than capacity.
var errBuildFailed = errors.New("server build failed")

// errTokenRefused marks a request the service refused with 401 (its token
// expired or was revoked) whose re-authentication then failed: gophercloud
// re-sends nothing, so the service did nothing with the request — a
// definite answer even when Keystone's failure is transient (retried). A
// create refused so is not one Nova may commit later (mayCommitLater).
var errTokenRefused = errors.New("the token was refused (HTTP 401)")

// classify maps a gophercloud error onto the drivers errors (ErrQuota,
// ErrInvalid, ErrNotFound) or errTransient, keeping the original text.
// Errors it does not recognise are returned unchanged (not retried).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	// A request the service refused with 401 (its token expired or was
	// revoked) whose re-authentication at the identity service failed:
	// the service did nothing, and Keystone's failure decides — an outage,
	// a 5xx or a slow Keystone is retried, refused credentials are not.
	if ra := reauthFailure(err); ra != nil {
		return fmt.Errorf("%s: %w and %w", op, errTokenRefused, classify(IdentityService+": re-authenticate", ra.ErrReauth))
	}
	// Checked before net.Error: the HTTP client's *url.Error is a
	// net.Error whatever its cause, so these would be retried.
	if why := misconfigured(err); why != "" {
		return fmt.Errorf("%s: %w: %s: %v", op, errConfig, why, err)
	}
	// A per-request timeout (http.Client.Timeout) is a net.Error that also
	// wraps context.DeadlineExceeded: it is the cloud being slow, retried.
	// The caller's own context ending is checked by the retry loop.
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%s: %w: %v", op, errTransient, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		body := strings.ToLower(string(code.Body))
		switch {
		case (code.Actual == http.StatusForbidden || code.Actual == http.StatusRequestEntityTooLarge) &&
			strings.Contains(body, "quota exceeded"):
			return fmt.Errorf("%s: %w: %s", op, drivers.ErrQuota, faultText(code.Body))
		case code.Actual == http.StatusBadRequest:
			return fmt.Errorf("%s: %w: %s", op, drivers.ErrInvalid, faultText(code.Body))
		case code.Actual == http.StatusNotFound:
			return fmt.Errorf("%s: %w: %s", op, drivers.ErrNotFound, faultText(code.Body))
		case code.Actual == http.StatusConflict || code.Actual == http.StatusTooManyRequests || code.Actual >= 500:
			return fmt.Errorf("%s: %w: HTTP %d: %s", op, errTransient, code.Actual, faultText(code.Body))
		}
		return fmt.Errorf("%s: HTTP %d: %s", op, code.Actual, faultText(code.Body))
	}
	if isConnReset(err) {
		return fmt.Errorf("%s: %w: %v", op, errTransient, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// IdentityService and ImageService name the services behind Nova in the
// driver's errors (Keystone's token, Glance's image look-up).
const (
	IdentityService = "identity service (Keystone)"
	ImageService    = "image service (Glance)"
)

// reauthFailure is gophercloud's error for a 401 whose re-authentication
// failed (it does not unwrap to either cause), or nil.
func reauthFailure(err error) *gophercloud.ErrUnableToReauthenticate {
	var p *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &p) {
		return p
	}
	var v gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &v) {
		return &v
	}
	return nil
}

// misconfigured says which setting to fix when err is a request the HTTP
// client could not make for a reason of configuration, or "" when it is
// not: a certificate that does not verify (cacert, or the host in
// auth_url), a host name DNS answers "no such host" for (auth_url), or a
// failure of the client that is neither a network error nor a timeout
// (a URL scheme other than http/https). A refused or reset connection, a
// timeout and a DNS server that does not answer stay transient.
func misconfigured(err error) string {
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &badHost) || errors.As(err, &badCert) {
		return "the server's certificate does not verify: set cacert (the datacenter's, or the cloud's in clouds.yaml) to the CA bundle that signed it, or fix the host in auth_url"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Sprintf("host %q is unknown to DNS: fix the host in auth_url (clouds.yaml)", dnsErr.Name)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		var netErr net.Error
		if !errors.As(urlErr.Err, &netErr) && !urlErr.Timeout() && !connectionLost(urlErr.Err) &&
			!errors.Is(urlErr.Err, context.Canceled) && !errors.Is(urlErr.Err, context.DeadlineExceeded) {
			return "the request could not be sent: fix auth_url (clouds.yaml)"
		}
	}
	return ""
}

// connectionLost tells the HTTP client's errors for a connection that
// ended under a request (not net.Errors: an EOF, a closed idle or HTTP/2
// connection) from those of a request it could not make.
func connectionLost(err error) bool {
	s := err.Error()
	return isConnReset(err) || strings.Contains(s, "server closed idle connection") ||
		strings.Contains(s, "connection broken") || strings.Contains(s, "http2:") || strings.Contains(s, "request canceled")
}

func isConnReset(err error) bool {
	s := err.Error()
	return strings.Contains(s, "EOF") || strings.Contains(s, "connection reset") ||
		strings.Contains(s, "connection refused") || strings.Contains(s, "broken pipe")
}

// faultText pulls the message out of Nova's {"forbidden": {"message": ...}}
// style body, or returns the trimmed body (cut at 300 bytes).
func faultText(body []byte) string {
	var env map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil {
		for _, k := range sortedKeys(env) {
			if env[k].Message != "" {
				return env[k].Message
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// isNoValidHost tells Nova's scheduling failure apart from other build faults.
func isNoValidHost(fault string) bool {
	return strings.Contains(strings.ToLower(fault), "no valid host")
}
