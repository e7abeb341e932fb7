// Package api owns ims-orch's REST API for NFV MANO: the resource types
// (JSON, camelCase) and their validation, the HTTP handlers under /api/v1
// (chi router, thin: decode → validate → Backend → encode), errors as
// RFC 9457 application/problem+json naming the field and the reason, bearer
// token authentication with read and admin scopes (tokens stored as SHA-256
// hashes, compared in constant time), a helper building the server's
// *tls.Config (TLS and mTLS), follower→leader handling of writes (reverse
// proxy, 307 redirect or 421 answer) and the hand-written OpenAPI 3 document
// (openapi.yaml, embedded and served).
//
// The API does not know Raft, the controllers or the drivers: it talks to the
// rest of the system through the Backend interface declared here. The daemon
// implements Backend; package api/apitest holds an in-memory one for tests.
//
// Request flow:
//
//	client ──▶ recover ──▶ auth (401/403) ──▶ handler: body limit (413),
//	           content type (415), strict JSON decode (400), validate (400)
//	           ──▶ Backend ──▶ ok: encode JSON
//	                      ├──▶ *ValidationError: 422
//	                      ├──▶ ErrNotFound: 404, ErrConflict: 409
//	                      └──▶ *NotLeaderError: proxy to the leader | 307 | 421
package api
