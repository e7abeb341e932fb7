package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON encodes v into a pooled buffer first, so that the answer goes
// out with a Content-Length in as few writes as possible, and an encoding
// failure (a NaN in a Backend value) becomes a 500 instead of half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		writeProblem(w, nil, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError,
			Detail: "the answer could not be encoded: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// readBody reads a request body under the size limit after checking its
// media type. It writes the problem and returns false on failure. An empty
// body is allowed only when !required (then the result is nil).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, required bool) ([]byte, bool) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body has %d bytes, at most %d allowed", r.ContentLength, s.cfg.MaxBodyBytes), Field: "body"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit), Field: "body"})
			return nil, false
		}
		badField(w, r, "body", "could not be read: "+err.Error())
		return nil, false
	}
	if len(body) == 0 && !required {
		return nil, true
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		writeProblem(w, r, Problem{Type: ProblemMediaType, Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("Content-Type %q is not supported; send application/json", truncate(ct)), Field: "Content-Type"})
		return nil, false
	}
	if len(body) == 0 {
		badField(w, r, "body", "is required (a JSON object)")
		return nil, false
	}
	return body, true
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, and turns decoding errors into a FieldError.
func decodeStrict(body []byte, v any) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "body", Reason: "has data after the JSON value"}
	}
	return nil
}

func jsonFieldError(err error) *FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &FieldError{Field: "body", Reason: fmt.Sprintf("is not valid JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &FieldError{Field: field, Reason: fmt.Sprintf("must be %s, got JSON %s", jsonKind(typ.Type.String()), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &FieldError{Field: "body", Reason: "ends before the JSON value is complete"}
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(rest)
		if name == "" {
			name = rest
		}
		return &FieldError{Field: name, Reason: "is not a known field"}
	}
	return &FieldError{Field: "body", Reason: strings.TrimPrefix(msg, "json: ")}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	}
	return "an object"
}

// decodeBody reads, decodes and validates a request body. It writes the
// problem and returns false on failure.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, required bool) ([]byte, bool) {
	body, ok := s.readBody(w, r, required)
	if !ok {
		return nil, false
	}
	if body == nil {
		return nil, true
	}
	if fe := decodeStrict(body, v); fe != nil {
		badField(w, r, fe.Field, fe.Reason)
		return nil, false
	}
	return body, true
}

// pathName reads and checks a name from the URL.
func pathName(w http.ResponseWriter, r *http.Request, param string) (string, bool) {
	name := chi.URLParam(r, param)
	if !nameRE.MatchString(name) {
		badField(w, r, param, fmt.Sprintf("%q in the URL %s", truncate(name), nameRule))
		return "", false
	}
	return name, true
}

func parseBool(w http.ResponseWriter, r *http.Request, param string) (bool, bool) {
	v := r.URL.Query().Get(param)
	switch v {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	badField(w, r, param, fmt.Sprintf("%q must be true or false", truncate(v)))
	return false, false
}
