package cloud

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Sample describes generated content for a channel.
type Sample struct {
	// SmallFiles is the number of small files (1 byte to MaxSmall bytes).
	SmallFiles int
	// MaxSmall is the largest small file.
	MaxSmall int
	// LargeBytes is the size of the one large file; 0 for none.
	LargeBytes int64
	// Empty adds an empty file and a one-byte file.
	Empty bool
	// Seed makes the content reproducible.
	Seed uint64
}

// Generate writes the sample into dir and returns the total bytes.
func (s Sample) Generate(dir string) (int64, error) {
	src := rand.NewChaCha8(seed32(s.Seed))
	rnd := rand.New(src)
	var total int64
	write := func(rel string, n int64) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, src, n)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		total += n
		return err
	}
	if s.Empty {
		if err := write("empty.dat", 0); err != nil {
			return total, err
		}
		if err := write("one-byte.dat", 1); err != nil {
			return total, err
		}
	}
	for i := 0; i < s.SmallFiles; i++ {
		n := int64(1 + rnd.IntN(max(s.MaxSmall, 1)))
		if err := write(fmt.Sprintf("small/%03d/file-%05d.bin", i/100, i), n); err != nil {
			return total, err
		}
	}
	if s.LargeBytes > 0 {
		if err := write("large/large.bin", s.LargeBytes); err != nil {
			return total, err
		}
	}
	return total, nil
}

func seed32(s uint64) [32]byte {
	var b [32]byte
	for i := 0; i < 4; i++ {
		s = s*6364136223846793005 + 1442695040888963407
		for j := 0; j < 8; j++ {
			b[i*8+j] = byte(s >> (8 * j))
		}
	}
	return b
}

// Digests returns the SHA-256 of every regular file under dir, by slash
// path, skipping nackcast's state directory. dir itself may be a symlink.
func Digests(dir string) (map[string]string, error) {
	out := map[string]string{}
	if root, err := filepath.EvalSymlinks(dir); err == nil {
		dir = root
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".nackcast") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return out, err
}

// Compare checks that got holds exactly the files of want with the same
// digests, and describes every difference.
func Compare(want, got map[string]string) error {
	var errs []error
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch g, ok := got[n]; {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: missing", n))
		case g != want[n]:
			errs = append(errs, fmt.Errorf("%s: sha256 %s, want %s", n, g[:12], want[n][:12]))
		}
		if len(errs) >= 10 {
			errs = append(errs, errors.New("(more differences not shown)"))
			return errors.Join(errs...)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			errs = append(errs, fmt.Errorf("%s: not in the origin", n))
		}
	}
	return errors.Join(errs...)
}
