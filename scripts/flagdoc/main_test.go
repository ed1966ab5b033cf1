package main

import (
	"bytes"
	"os"
	"testing"
)

// TestREADMEUpToDate fails when a flag was added, removed or changed
// without regenerating the README's configuration tables (make docs).
func TestREADMEUpToDate(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	updated, err := Update(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, updated) {
		t.Error("README.md configuration tables are out of date: run make docs")
	}
}
