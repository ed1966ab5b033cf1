package vecio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestReadWriteAt(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v Vec
	parts := [][]byte{[]byte("hello "), {}, []byte("vectored "), []byte("world")}
	n, err := v.WriteAt(f, parts, 10)
	if err != nil || n != 20 {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := [][]byte{make([]byte, 3), make([]byte, 0), make([]byte, 17)}
	n, err = v.ReadAt(f, got, 10)
	if err != nil || n != 20 || !bytes.Equal(bytes.Join(got, nil), []byte("hello vectored world")) {
		t.Fatalf("ReadAt = %d, %v, %q", n, err, got)
	}
	if _, err := v.ReadAt(f, [][]byte{make([]byte, 25)}, 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read past the end: %v, want ErrUnexpectedEOF", err)
	}
	bufs := [][]byte{make([]byte, 1400), make([]byte, 1400), make([]byte, 1400)}
	if a := testing.AllocsPerRun(100, func() {
		if _, err := v.WriteAt(f, bufs, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := v.ReadAt(f, bufs, 0); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per read and write", a)
	}
}
