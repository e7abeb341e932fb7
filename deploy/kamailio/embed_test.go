package kamailio

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSIPpScenarios(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSIPpScenarios(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := fs.ReadDir(Files, "sipp")
	if err != nil || len(ents) == 0 {
		t.Fatalf("embedded scenarios: %d, %v", len(ents), err)
	}
	for _, e := range ents {
		want, _ := fs.ReadFile(Files, "sipp/"+e.Name())
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: not written as embedded (%v)", e.Name(), err)
		}
	}
	if err := WriteSIPpScenarios(dir); err == nil {
		t.Fatal("writing over existing scenarios succeeded")
	}
}
