// Package atomicfile is the one way regmirror replaces a file: the content
// goes to a temporary file in the same directory, which is synced, renamed
// over the name and then made durable by syncing the directory. A reader
// therefore sees the old file or the new one, never half of one, and after
// a crash a file that exists is complete. Every writer of a file another
// run or tool will trust (OCI layouts and bundles, the platform cache, the
// mirror-list report) goes through here.
package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// File is a file being written; nothing is visible under its name until
// Commit. Abort (or a failed Commit) leaves no trace.
type File struct {
	f    *os.File
	name string
	perm os.FileMode
	done bool
}

// Create starts writing name with permissions perm.
func Create(name string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return nil, err
	}
	return &File{f: f, name: name, perm: perm}, nil
}

// Write appends to the content.
func (a *File) Write(p []byte) (int, error) { return a.f.Write(p) }

var _ io.Writer = (*File)(nil)

// Commit syncs the content, renames it over the name and syncs the
// directory.
func (a *File) Commit() error {
	if a.done {
		return errors.New("atomicfile: commit after commit or abort")
	}
	a.done = true
	tmp := a.f.Name()
	err := errors.Join(a.f.Chmod(a.perm), a.f.Sync())
	if err = errors.Join(err, a.f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, a.name); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(a.name))
}

// Abort drops what was written. It is safe after Commit (it does nothing
// then), so it can be deferred.
func (a *File) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// WriteFile replaces name with data, atomically and durably.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	a, err := Create(name, perm)
	if err != nil {
		return err
	}
	defer a.Abort()
	if _, err := a.Write(data); err != nil {
		return err
	}
	return a.Commit()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
