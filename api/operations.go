package api

import (
	"fmt"
	"net/http"
	"net/url"
)

func (s *Server) accepted(w http.ResponseWriter, op Operation) {
	w.Header().Set("Location", Prefix+"/operations/"+url.PathEscape(op.ID))
	writeJSON(w, http.StatusAccepted, op)
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	vnf, ok := pathName(w, r, "vnf")
	if !ok {
		return
	}
	var in ScaleRequest
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if in.VNF == "" {
		in.VNF = vnf
	} else if in.VNF != vnf {
		badField(w, r, "vnf", fmt.Sprintf("%q differs from the VNF in the URL (%q)", truncate(in.VNF), vnf))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	op, err := s.cfg.Backend.Scale(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	s.accepted(w, op)
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	dc, ok := pathName(w, r, "dc")
	if !ok {
		return
	}
	var in DrainRequest
	body, ok := s.decodeBody(w, r, &in, false)
	if !ok {
		return
	}
	if in.DC == "" {
		in.DC = dc
	} else if in.DC != dc {
		badField(w, r, "dc", fmt.Sprintf("%q differs from the datacenter in the URL (%q)", truncate(in.DC), dc))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	op, err := s.cfg.Backend.Drain(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	s.accepted(w, op)
}

// undrain ends the drain of a datacenter (DELETE of the drain resource).
func (s *Server) undrain(w http.ResponseWriter, r *http.Request) {
	dc, ok := pathName(w, r, "dc")
	if !ok {
		return
	}
	op, err := s.cfg.Backend.Undrain(r.Context(), DrainRequest{DC: dc})
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.accepted(w, op)
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	id, ok := pathName(w, r, "id")
	if !ok {
		return
	}
	op, err := s.cfg.Backend.Operation(r.Context(), id)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, op)
}
