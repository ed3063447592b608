package scenarios_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncharness/syncharness/scenarios"
)

func loadCatalog(b *testing.B) (names []string, data [][]byte, size int64) {
	b.Helper()
	files, err := filepath.Glob("catalog/*.scn")
	if err != nil || len(files) == 0 {
		b.Fatalf("no catalogue files: %v", err)
	}
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		names = append(names, f)
		data = append(data, d)
		size += int64(len(d))
	}
	return names, data, size
}

// BenchmarkParseCatalog parses and checks every file of the built-in catalogue.
func BenchmarkParseCatalog(b *testing.B) {
	names, data, size := loadCatalog(b)
	b.SetBytes(size)
	for b.Loop() {
		for i := range names {
			if _, err := scenarios.Parse(names[i], data[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFormatCatalog formats every file of the built-in catalogue.
func BenchmarkFormatCatalog(b *testing.B) {
	names, data, size := loadCatalog(b)
	var parsed []*scenarios.Scenario
	for i := range names {
		s, err := scenarios.ParseSyntax(names[i], data[i])
		if err != nil {
			b.Fatal(err)
		}
		parsed = append(parsed, s)
	}
	b.SetBytes(size)
	for b.Loop() {
		for _, s := range parsed {
			scenarios.Format(s)
		}
	}
}
