package bundle

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/regmirror/regmirror/internal/atomicfile"
)

// files reads a bundle's files, from a directory or from a .tar without
// unpacking it: the tar is indexed once and each file read as a section.
type files interface {
	// Open opens a file by its slash-separated path in the layout; a
	// missing file is an fs.ErrNotExist error.
	Open(name string) (io.ReadCloser, error)
	// Size returns a file's size.
	Size(name string) (int64, error)
	Close() error
}

// IsTar reports whether a bundle path names the .tar form.
func IsTar(p string) bool { return strings.HasSuffix(p, ".tar") }

func openFiles(p string) (files, error) {
	if IsTar(p) {
		return openTar(p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory and not a .tar", p)
	}
	return dirFiles(p), nil
}

type dirFiles string

func (d dirFiles) Open(name string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
}

func (d dirFiles) Size(name string) (int64, error) {
	st, err := os.Stat(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (d dirFiles) Close() error { return nil }

type section struct{ off, size int64 }

type tarFiles struct {
	f       io.ReaderAt
	closer  io.Closer
	entries map[string]section
}

// tarSource is what a tar is read from: a file, or memory in the fuzzer.
type tarSource interface {
	io.ReadSeeker
	io.ReaderAt
}

// posReader tracks the offset of the underlying file, so that after
// tar.Reader.Next the offset is where the entry's data begins.
type posReader struct {
	f   io.ReadSeeker
	pos int64
}

func (r *posReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := r.f.Seek(off, whence)
	if err == nil {
		r.pos = n
	}
	return n, err
}

func openTar(p string) (*tarFiles, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	t, err := indexTar(f, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: reading tar: %w", p, err)
	}
	return t, nil
}

// indexTar reads a tar's headers (skipping its contents) and remembers
// where each regular file's data lies.
func indexTar(src tarSource, closer io.Closer) (*tarFiles, error) {
	t := &tarFiles{f: src, closer: closer, entries: map[string]section{}}
	pr := &posReader{f: src}
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		t.entries[name] = section{off: pr.pos, size: h.Size}
	}
	return t, nil
}

func (t *tarFiles) Open(name string) (io.ReadCloser, error) {
	s, ok := t.entries[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return io.NopCloser(io.NewSectionReader(t.f, s.off, s.size)), nil
}

func (t *tarFiles) Size(name string) (int64, error) {
	s, ok := t.entries[name]
	if !ok {
		return 0, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return s.size, nil
}

func (t *tarFiles) Close() error { return t.closer.Close() }

// packTar writes the layout in dir as a tar at dst, deleting each blob from
// dir once it is in the tar, so a bundle of tens of GB needs little more
// than its own size on disk. index.json and the bundle manifest are taken
// out of dir first and written last: an interrupted pack leaves a dir that
// names no image (a re-run exports again, fetching only deleted blobs) and
// a temporary file, never a tar that looks complete.
func packTar(dir, dst string) error {
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	man, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return err
	}
	for _, n := range []string{ManifestFile, "index.json"} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	f, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	tw := tar.NewWriter(f)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
			return err
		}
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	ents, err := os.ReadDir(blobDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(blobDir, e.Name())
		if err := addFile(tw, "blobs/sha256/"+e.Name(), p); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}, {ManifestFile, man}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: x.name, Mode: 0o644, Size: int64(len(x.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(x.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func addFile(tw *tar.Writer, name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
