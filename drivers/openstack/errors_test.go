package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ims-orch/ims-orch/drivers"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClassify(t *testing.T) {
	code := func(status int, file string) error {
		return gophercloud.ErrUnexpectedResponseCode{Actual: status, Body: fixture(t, file)}
	}
	cases := []struct {
		name string
		err  error
		want error // nil: none of ours
		msg  string
	}{
		{"quota 403", code(403, "quota_exceeded_403.json"), drivers.ErrQuota, "Quota exceeded for instances: Requested 1"},
		{"quota 413", code(413, "quota_exceeded_413.json"), drivers.ErrQuota, "cores"},
		{"403 without quota is not quota", gophercloud.ErrUnexpectedResponseCode{Actual: 403, Body: []byte(`{"forbidden": {"message": "Policy doesn't allow"}}`)}, nil, "HTTP 403: Policy"},
		{"bad image", code(400, "bad_image_400.json"), drivers.ErrInvalid, "Can not find requested image"},
		{"bad flavor", code(400, "bad_flavor_400.json"), drivers.ErrInvalid, "Flavor 99 could not be found."},
		{"not found", code(404, "not_found_404.json"), drivers.ErrNotFound, "could not be found"},
		{"conflict", code(409, "conflict_409.json"), errTransient, "task_state deleting"},
		{"internal", code(500, "internal_500.json"), errTransient, "HTTP 500: Unexpected API Error"},
		{"html 503", code(503, "unavailable_503.json"), errTransient, "503 Service Unavailable"},
		{"429", gophercloud.ErrUnexpectedResponseCode{Actual: 429, Body: []byte("slow down")}, errTransient, "slow down"},
		{"timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, errTransient, "i/o timeout"},
		{"eof", errors.New("Post \"http://x/servers\": EOF"), errTransient, "EOF"},
		{"caller cancelled", context.Canceled, nil, "context canceled"},
		// a 401 (token expired or revoked) whose re-authentication failed:
		// Keystone's failure decides, and the error names Keystone
		{"re-auth: Keystone 503", reauth(gophercloud.ErrUnexpectedResponseCode{Actual: 503, Body: fixture(t, "unavailable_503.json")}), errTransient, "identity service (Keystone): re-authenticate: transient cloud error: HTTP 503"},
		{"re-auth: Keystone timed out", reauth(&url.Error{Op: "Post", URL: "http://127.0.0.1:5000/v3/auth/tokens", Err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}}), errTransient, "(Keystone): re-authenticate: transient cloud error: Post"},
		{"re-auth: Keystone refused", reauth(errors.New("Post \"http://127.0.0.1:5000/v3/auth/tokens\": dial tcp 127.0.0.1:5000: connect: connection refused")), errTransient, "(Keystone)"},
		{"re-auth: credentials refused", reauth(gophercloud.ErrUnexpectedResponseCode{Actual: 401, Body: []byte(`{"error": {"message": "The request you have made requires authentication.", "code": 401}}`)}), nil, "the token was refused (HTTP 401) and identity service (Keystone): re-authenticate: HTTP 401: The request you have made requires authentication."},
		{"something else", errors.New("weird"), nil, "weird"},
		// the HTTP client's *url.Error is a net.Error whatever its cause:
		// a network failure under it is retried, a configuration is not
		{"refused", keystoneErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), errTransient, "connection refused"},
		{"reset", keystoneErr(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), errTransient, "connection reset"},
		{"server closed", keystoneErr(io.EOF), errTransient, "EOF"},
		{"client timeout", keystoneErr(timeoutErr{}), errTransient, "Client.Timeout exceeded"},
		{"DNS server failing", keystoneErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "keystone.lab", IsTemporary: true}}), errTransient, "server misbehaving"},
		{"DNS: no such host", keystoneErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "keystone.lab", IsNotFound: true}}), errConfig, `host "keystone.lab" is unknown to DNS: fix the host in auth_url`},
		{"untrusted CA", keystoneErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), errConfig, "set cacert"},
		{"bad scheme", keystoneErr(errors.New(`unsupported protocol scheme "htp"`)), errConfig, "could not be sent: fix auth_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify("op", tc.err)
			for _, e := range []error{drivers.ErrQuota, drivers.ErrInvalid, drivers.ErrNotFound, errTransient, errConfig} {
				if errors.Is(got, e) != (e == tc.want) {
					t.Errorf("classify = %v: errors.Is(%v) = %v", got, e, errors.Is(got, e))
				}
			}
			if !strings.Contains(got.Error(), tc.msg) {
				t.Errorf("classify = %q, want it to mention %q", got, tc.msg)
			}
		})
	}
	if classify("op", nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// keystoneErr is the HTTP client's error for a token request that failed
// with err.
func keystoneErr(err error) error {
	return &url.Error{Op: "Post", URL: "https://keystone.lab:5000/v3/auth/tokens", Err: err}
}

// timeoutErr is the HTTP client's own timeout (http.Client.Timeout).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "Client.Timeout exceeded while awaiting headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// reauth is gophercloud's error for a 401 of a service whose
// re-authentication failed with err.
func reauth(err error) error {
	return &gophercloud.ErrUnableToReauthenticate{
		ErrOriginal: gophercloud.ErrUnexpectedResponseCode{Actual: 401, Body: []byte(`{"error": {"code": 401, "title": "Unauthorized"}}`)},
		ErrReauth:   err,
	}
}

func TestNoValidHost(t *testing.T) {
	if !isNoValidHost("No valid host was found. There are not enough hosts available.") || isNoValidHost("disk full") {
		t.Error("isNoValidHost")
	}
}
