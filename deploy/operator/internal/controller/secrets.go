package controller

import (
	"bytes"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"
)

// generateToken makes an admin token (key token, used by the operator and
// handed to users) and the daemon's token file holding only its hash (key
// tokens.yaml).
func generateToken() (map[string][]byte, error) {
	tok, sum, err := api.GenerateToken()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(api.TokenFile{Tokens: []api.TokenEntry{
		{Name: "ims-orch-operator", Scope: api.ScopeAdmin, SHA256: sum}}}); err != nil {
		return nil, err
	}
	return map[string][]byte{tokenKey: []byte(tok), tokensKey: buf.Bytes()}, nil
}
