package api

import (
	"context"
	"net/http"
)

// putDoc answers a PUT of a whole document: decode (strict, size-limited),
// validate, store through the Backend, and answer what changed. store
// returns the previous document and whether there was one.
func putDoc[D interface{ Validate() error }](s *Server, w http.ResponseWriter, r *http.Request,
	store func(ctx context.Context, in D) (prev D, existed bool, err error)) {
	var in D
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	prev, existed, err := store(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	writeJSON(w, http.StatusOK, putResult(existed, prev, in))
}

func (s *Server) getDatacenters(w http.ResponseWriter, r *http.Request) {
	dcs, err := s.cfg.Backend.Datacenters(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, DatacenterList{Datacenters: nonNil(dcs)})
}

func (s *Server) putDatacenters(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in DatacenterList) (DatacenterList, bool, error) {
		prev, err := s.cfg.Backend.SetDatacenters(ctx, in.Datacenters)
		return DatacenterList{Datacenters: nonNil(prev)}, prev != nil, err
	})
}

func (s *Server) getDelays(w http.ResponseWriter, r *http.Request) {
	m, err := s.cfg.Backend.Delays(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	m.Datacenters, m.DelaysMs = nonNil(m.Datacenters), nonNil(m.DelaysMs)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) putDelays(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in DelayMatrix) (DelayMatrix, bool, error) {
		prev, err := s.cfg.Backend.SetDelays(ctx, in)
		return prev, prev.Datacenters != nil, err
	})
}

func (s *Server) getVNFTypes(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Backend.VNFTypes(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, VNFTypeList{VNFTypes: nonNil(ts)})
}

func (s *Server) putVNFTypes(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in VNFTypeList) (VNFTypeList, bool, error) {
		prev, err := s.cfg.Backend.SetVNFTypes(ctx, in.VNFTypes)
		return VNFTypeList{VNFTypes: nonNil(prev)}, prev != nil, err
	})
}

func (s *Server) getChains(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Backend.Chains(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, ChainList{Chains: nonNil(cs)})
}

func (s *Server) putChains(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in ChainList) (ChainList, bool, error) {
		prev, err := s.cfg.Backend.SetChains(ctx, in.Chains)
		return ChainList{Chains: nonNil(prev)}, prev != nil, err
	})
}
