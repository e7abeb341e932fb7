package netns

import (
	"strings"
	"testing"
)

const nftSample = `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "bridge", "name": "ims"}},
{"set": {"family": "bridge", "name": "flows", "table": "ims", "type": ["ipv4_addr", "inet_service"], "elem": [{"elem": {"val": 1}}, {"elem": {"val": 2}}]}},
{"rule": {"family": "bridge", "table": "ims", "chain": "forward", "comment": "signature", "expr": [{"counter": {"packets": 3, "bytes": 516}}, {"drop": null}]}},
{"rule": {"family": "bridge", "table": "ims", "chain": "forward", "comment": "inspected", "expr": [{"counter": {"packets": 100, "bytes": 17200}}]}}]}`

func TestParseNft(t *testing.T) {
	c, flows, err := ParseNft([]byte(nftSample))
	if err != nil || c["signature"] != 3 || c["inspected"] != 100 || flows != 2 {
		t.Fatalf("%v %d %v", c, flows, err)
	}
	if _, _, err := ParseNft([]byte("{")); err == nil || !strings.Contains(err.Error(), "nft -j") {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range []string{"firewall", "ids", "transcoder"} {
		if _, err := ParseKind(k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParseKind("pcscf"); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("pcscf: %v", err)
	}
}

func FuzzParseNft(f *testing.F) {
	f.Add([]byte(nftSample))
	f.Add([]byte(`{"nftables": [{"rule": {"comment": "x", "expr": [{"counter": {"packets": -1}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := ParseNft(b)
		if err == nil && (c == nil || n < 0) {
			t.Fatalf("no error but %v %d", c, n)
		}
	})
}
