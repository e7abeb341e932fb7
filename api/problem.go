package api

import (
	"encoding/json"
	"net/http"
)

// ProblemContentType is the media type of every error body (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document. Field names the offending field
// when there is exactly one; Errors lists every invalid field of a
// validation failure. Leader is set on 307/421 answers of a follower.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Field    string       `json:"field,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	Leader   string       `json:"leader,omitempty"`
}

// Problem types (URNs, stable: clients may switch on them).
const (
	ProblemBadRequest        = "urn:ims-orch:problem:bad-request"
	ProblemValidation        = "urn:ims-orch:problem:validation"
	ProblemUnauthorized      = "urn:ims-orch:problem:unauthorized"
	ProblemForbidden         = "urn:ims-orch:problem:forbidden"
	ProblemNotFound          = "urn:ims-orch:problem:not-found"
	ProblemMethod            = "urn:ims-orch:problem:method-not-allowed"
	ProblemConflict          = "urn:ims-orch:problem:conflict"
	ProblemTooLarge          = "urn:ims-orch:problem:body-too-large"
	ProblemMediaType         = "urn:ims-orch:problem:unsupported-media-type"
	ProblemNotLeader         = "urn:ims-orch:problem:not-leader"
	ProblemUnavailable       = "urn:ims-orch:problem:unavailable"
	ProblemInternal          = "urn:ims-orch:problem:internal"
	ProblemUnprocessable     = "urn:ims-orch:problem:unprocessable"
	ProblemTemporaryRedirect = "urn:ims-orch:problem:temporary-redirect"
)

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil && p.Instance == "" {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// badField answers 400 naming one field.
func badField(w http.ResponseWriter, r *http.Request, field, reason string) {
	writeProblem(w, r, Problem{
		Type: ProblemBadRequest, Status: http.StatusBadRequest,
		Detail: fieldDetail(field, reason), Field: field,
		Errors: []FieldError{{Field: field, Reason: reason}},
	})
}

func fieldDetail(field, reason string) string {
	if field == "" {
		return reason
	}
	return field + ": " + reason
}
