package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// DefaultDecisionsLimit is the page size of GET /decisions without ?limit.
const DefaultDecisionsLimit = 100

// ParseDecisionQuery reads the query of GET /decisions: since (a round
// ≥ 0), after (a cursor: the next of an earlier page, a Seq ≥ 0) and limit
// (1..MaxDecisionsLimit, DefaultDecisionsLimit when absent). A bad value is
// a FieldError naming the parameter.
func ParseDecisionQuery(q url.Values) (DecisionQuery, *FieldError) {
	dq := DecisionQuery{Limit: DefaultDecisionsLimit}
	for _, p := range []struct {
		name string
		dst  *int64
		rule string
	}{
		{"since", &dq.Since, "must be a round number ≥ 0"},
		{"after", &dq.After, "must be a cursor: the next of an earlier page (an integer ≥ 0)"},
	} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return DecisionQuery{}, &FieldError{Field: p.name, Reason: fmt.Sprintf("%q %s", truncate(v), p.rule)}
			}
			*p.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDecisionsLimit {
			return DecisionQuery{}, &FieldError{Field: "limit", Reason: fmt.Sprintf("%q must be an integer between 1 and %d", truncate(v), MaxDecisionsLimit)}
		}
		dq.Limit = n
	}
	return dq, nil
}

func (s *Server) getDecisions(w http.ResponseWriter, r *http.Request) {
	q, fe := ParseDecisionQuery(r.URL.Query())
	if fe != nil {
		badField(w, r, fe.Field, fe.Reason)
		return
	}
	page, err := s.cfg.Backend.Decisions(r.Context(), q)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	if q.After > page.Newest {
		badField(w, r, "after", fmt.Sprintf("%d is past the newest decision (%d): the cursor comes from another node or from before a restart; start again without after", q.After, page.Newest))
		return
	}
	out := DecisionList{Decisions: nonNil(page.Decisions), Next: q.After, More: page.More}
	if n := len(out.Decisions); n > 0 {
		out.Next = out.Decisions[n-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}
