package vnf

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// otherVocabularies are the files whose string literals spell a Table 2
// name for something that is not the VNF type: a DNS service label, a
// Kamailio role. They stay; every other name is written through this
// package (PCSCF, …, DataPlaneChain, Normalize).
var otherVocabularies = map[string]string{
	"controller/sipglue/dns.go": "DNS service labels (pcscf.<zone>, scscf.<zone>)",
	"drivers/local/plan.go":     "Kamailio configuration roles",
}

// TestNoSecondCatalog walks the module's Go files (tests and this package
// aside) and fails on a string literal that spells a Table 2 name or alias:
// the names, like the capacities and thresholds, have one definition, here.
func TestNoSecondCatalog(t *testing.T) {
	root := filepath.Join("..", "..")
	keys := map[string]bool{}
	for _, ty := range table2 {
		keys[ty.Key()] = true
	}
	for a := range aliases {
		keys[a] = true
	}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "placement/vnf" || rel == "deploy/operator" || rel == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir // this package; the operator is a module of its own
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || otherVocabularies[rel] != "" {
			return nil
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && keys[Normalize(s)] {
				t.Errorf("%s: string literal %s spells a Table 2 VNF: use placement/vnf", rel, lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked only %d Go files from %s", files, root)
	}
}
