package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

func (s *Server) getPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.cfg.Backend.Policies(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, PolicyList{Policies: nonNil(ps)})
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	p, err := s.cfg.Backend.Policy(r.Context(), name)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	dry, ok := parseBool(w, r, "dryRun")
	if !ok {
		return
	}
	var in Policy
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if in.Name == "" {
		in.Name = name
	} else if in.Name != name {
		badField(w, r, "name", fmt.Sprintf("%q differs from the name in the URL (%q)", truncate(in.Name), name))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	ctx := r.Context()
	if dry {
		decisions, err := s.cfg.Backend.DryRunPolicy(ctx, in)
		if err != nil {
			s.fail(w, r, body, err)
			return
		}
		prev, err := s.cfg.Backend.Policy(ctx, name)
		existed := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.fail(w, r, body, err)
			return
		}
		res := putResult(existed, prev, in)
		writeJSON(w, http.StatusOK, DryRunResult{DryRun: true, Changes: res.Changes, Decisions: nonNil(decisions)})
		return
	}
	prev, err := s.cfg.Backend.PutPolicy(ctx, in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	res := putResult(prev != nil, prev, in)
	status := http.StatusOK
	if prev == nil {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+"/policies/"+url.PathEscape(name))
	}
	writeJSON(w, status, res)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	if err := s.cfg.Backend.DeletePolicy(r.Context(), name); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
