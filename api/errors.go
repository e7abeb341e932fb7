package api

import (
	"context"
	"errors"
	"net/http"
)

func invalid(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		badField(w, r, "body", err.Error())
		return
	}
	p := Problem{Type: ProblemValidation, Status: http.StatusBadRequest, Title: "Invalid request",
		Detail: ve.Error(), Errors: ve.Errors}
	if len(ve.Errors) == 1 {
		p.Field = ve.Errors[0].Field
	}
	writeProblem(w, r, p)
}

// fail maps a Backend error to an answer. body is the request body, needed
// when the request is proxied to the leader.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	var nl *NotLeaderError
	var ve *ValidationError
	switch {
	case errors.As(err, &nl):
		s.notLeader(w, r, body, nl)
	case errors.As(err, &ve):
		p := Problem{Type: ProblemUnprocessable, Status: http.StatusUnprocessableEntity,
			Title: "Request does not fit the configuration", Detail: ve.Error(), Errors: ve.Errors}
		if len(ve.Errors) == 1 {
			p.Field = ve.Errors[0].Field
		}
		writeProblem(w, r, p)
	case errors.Is(err, ErrNotFound):
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, ErrConflict):
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
	case errors.Is(err, ErrNoLeader), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: err.Error()})
	default:
		s.cfg.Logger.Error("api: backend error", "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError,
			Detail: "internal error (logged on the server)"})
	}
}
