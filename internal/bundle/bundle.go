package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
)

// ErrCorrupt is returned (wrapped) when a blob's content does not match its
// digest or size.
var ErrCorrupt = errors.New("corrupt blob")

// ErrMissing is returned (wrapped) when a blob or manifest is in neither
// this bundle nor, for import, on the target.
var ErrMissing = errors.New("missing from the bundle")

// ErrExists is returned by Export when its output is already a finished
// bundle: export writes new bundles only.
var ErrExists = errors.New("already exists")

// Bundle is an opened bundle, read-only.
type Bundle struct {
	Path     string
	Manifest *Manifest
	Index    *v1.IndexManifest
	files    files
	held     map[string]Blob // digest -> blob stored here
	inherits map[string]Blob // digest -> blob held by an earlier bundle
}

// Open opens the bundle at p (a directory or a .tar) and reads its manifest
// and index. Blobs are read, and checked, only when asked for.
func Open(p string) (*Bundle, error) {
	fl, err := openFiles(p)
	if err != nil {
		return nil, err
	}
	return openBundle(p, fl)
}

// openBundle reads the manifest and index of the bundle fl holds; p names
// it in messages. fl is closed if it fails.
func openBundle(p string, fl files) (*Bundle, error) {
	var err error
	b := &Bundle{Path: p, files: fl, held: map[string]Blob{}, inherits: map[string]Blob{}}
	raw, err := b.readAll(ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		fl.Close()
		return nil, fmt.Errorf("%s: no %s: not a regmirror bundle, or its export did not finish", p, ManifestFile)
	}
	if err != nil {
		fl.Close()
		return nil, err
	}
	if b.Manifest, err = parseManifest(p, raw); err != nil {
		fl.Close()
		return nil, err
	}
	idx, err := b.readAll("index.json")
	if err != nil {
		fl.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	b.Index = &v1.IndexManifest{}
	if err := json.Unmarshal(idx, b.Index); err != nil {
		fl.Close()
		return nil, fmt.Errorf("%s: index.json: %w", p, err)
	}
	for _, bl := range b.Manifest.Blobs {
		b.held[bl.Digest] = bl
	}
	for _, bl := range b.Manifest.Inherits {
		b.inherits[bl.Digest] = bl
	}
	return b, nil
}

// Close releases the bundle's files.
func (b *Bundle) Close() error { return b.files.Close() }

// String names the bundle in messages.
func (b *Bundle) String() string { return b.Manifest.Ref().Describe() }

// MaxDocumentSize bounds every JSON document read from a bundle: index.json,
// the bundle manifest and every manifest. A bundle comes from outside; a
// 2 GiB index.json must not be read into memory.
const MaxDocumentSize = registry.MaxManifestSize

// ErrTooLarge is returned (wrapped) for a document over MaxDocumentSize.
var ErrTooLarge = errors.New("too large")

// readAll reads a JSON document of the layout, checking its declared size
// (the file's, or the tar entry's) before reading and reading no more than
// the bound whatever it declared.
func (b *Bundle) readAll(name string) ([]byte, error) {
	size, err := b.files.Size(name)
	if err != nil {
		return nil, err
	}
	if size > MaxDocumentSize {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than a bundle document may be (%d): %w", b.Path, name, size, MaxDocumentSize, ErrTooLarge)
	}
	r, err := b.files.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err == nil && len(raw) > MaxDocumentSize {
		err = fmt.Errorf("%s: %s is more than %d bytes: %w", b.Path, name, MaxDocumentSize, ErrTooLarge)
	}
	return raw, err
}

// checkImageName checks an image name a bundle lists against the
// distribution grammar ("docker.io/library/../../victim/app:1" is not one).
func checkImageName(n string) error {
	if _, err := registry.ParseImageName(n); err != nil {
		return fmt.Errorf("image name from the bundle: %w", err)
	}
	return nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// missing explains why digest h cannot be read from this bundle: which
// earlier bundle holds it, if any.
func (b *Bundle) missing(h v1.Hash) error {
	if in, ok := b.inherits[h.String()]; ok {
		return fmt.Errorf("%s: %s is held by %s, import that bundle first: %w", b.Path, h, b.Manifest.refByID(in.Bundle).Describe(), ErrMissing)
	}
	return fmt.Errorf("%s: %s: %w", b.Path, h, ErrMissing)
}

// Blob opens blob h for reading. The reader checks size and digest as it
// goes and fails the read that would complete a wrong blob, so corrupt
// content never reaches its consumer in full. counted, if set, is told of
// every byte read.
func (b *Bundle) Blob(h v1.Hash, size int64, counted func(int64)) (io.ReadCloser, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s: blob %s: unsupported digest algorithm", b.Path, h)
	}
	r, err := b.files.Open(blobName(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, b.missing(h)
	}
	if err != nil {
		return nil, err
	}
	if size < 0 {
		if size, err = b.files.Size(blobName(h)); err != nil {
			r.Close()
			return nil, err
		}
	}
	return &verifyReader{r: r, h: h, size: size, sum: sha256.New(), counted: counted, where: b.Path}, nil
}

// readBlob reads a whole manifest or config blob, checked.
func (b *Bundle) readBlob(h v1.Hash) ([]byte, error) { return b.readDoc(h, nil) }

// readDoc reads a manifest or config blob whole, checked against its digest
// and bounded by MaxDocumentSize: the size the bundle manifest lists for it,
// then the file's own, are checked before a byte is read, and the reader
// stops at the bound whatever they said. A digest-valid 2 GiB blob listed
// as a manifest is refused, not read.
func (b *Bundle) readDoc(h v1.Hash, counted func(int64)) ([]byte, error) {
	name := blobName(h)
	size, err := b.files.Size(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, b.missing(h)
	}
	if err != nil {
		return nil, err
	}
	if bl, ok := b.held[h.String()]; ok && bl.Size != size {
		return nil, fmt.Errorf("%s: blob %s: %d bytes, %s lists %d: %w", b.Path, h, size, ManifestFile, bl.Size, ErrCorrupt)
	}
	if size > MaxDocumentSize {
		return nil, fmt.Errorf("%s: blob %s is %d bytes, more than a manifest may be (%d): %w", b.Path, h, size, MaxDocumentSize, ErrTooLarge)
	}
	r, err := b.Blob(h, size, counted)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
}

type verifyReader struct {
	r       io.ReadCloser
	h       v1.Hash
	size, n int64
	sum     hash.Hash
	counted func(int64)
	where   string
	err     error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.sum.Write(p[:n])
	if v.n > v.size {
		v.err = fmt.Errorf("%s: blob %s: longer than its %d bytes: %w", v.where, v.h, v.size, ErrCorrupt)
		return 0, v.err
	}
	if v.n == v.size {
		// Check before handing over the last bytes: a reader that stops
		// at Content-Length never asks for EOF.
		if got := hex.EncodeToString(v.sum.Sum(nil)); got != v.h.Hex {
			v.err = fmt.Errorf("%s: blob %s: content has sha256:%s: %w", v.where, v.h, got, ErrCorrupt)
			return 0, v.err
		}
	}
	if errors.Is(err, io.EOF) && v.n < v.size {
		v.err = fmt.Errorf("%s: blob %s: %d of %d bytes: %w", v.where, v.h, v.n, v.size, ErrCorrupt)
		return 0, v.err
	}
	if v.counted != nil && n > 0 {
		v.counted(int64(n))
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.r.Close() }
