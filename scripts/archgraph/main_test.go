package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestArchitectureGraphCurrent fails when docs/architecture.md does not show
// the package graph as it is (run `go run ./scripts/archgraph`).
func TestArchitectureGraphCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	g, err := graph(root)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		t.Fatal(err)
	}
	want, err := splice(cur, g)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(cur) {
		t.Fatalf("%s: the package graph is stale; run `go run ./scripts/archgraph` and commit the result", doc)
	}
}

func TestSplice(t *testing.T) {
	out, err := splice([]byte("a\n"+begin+"\nold\n"+end+"\nb\n"), "x → y\n")
	if err != nil || string(out) != "a\n"+begin+"\n```\nx → y\n```\n"+end+"\nb\n" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := splice([]byte("no markers"), ""); err == nil {
		t.Fatal("missing markers accepted")
	}
}
