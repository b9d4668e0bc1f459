package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/regmirror/regmirror/internal/atomicfile"
)

// platformCache remembers which image a multi-arch index holds for a
// platform. An index digest names its content, so the answer never changes:
// with it, a `platform:` mapping whose target is current costs HEADs only,
// like any other, instead of one manifest GET (a Docker Hub pull) per run.
//
// It lives in memory for the daemon's lifetime and, when a file is given,
// on disk between one-shot runs.
type platformCache struct {
	mu    sync.Mutex
	m     map[string]string // index digest + "|" + platform -> image digest
	file  string
	dirty bool
}

func newPlatformCache(file string) *platformCache {
	c := &platformCache{m: map[string]string{}, file: file}
	if file == "" {
		return c
	}
	if b, err := os.ReadFile(file); err == nil {
		// A damaged cache is only a lost optimisation: start afresh.
		_ = json.Unmarshal(b, &c.m)
	}
	return c
}

func (c *platformCache) get(index, platform string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[index+"|"+platform]
	return d, ok
}

func (c *platformCache) put(index, platform, image string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[index+"|"+platform] != image {
		c.m[index+"|"+platform] = image
		c.dirty = true
	}
}

// save writes the cache atomically if it changed.
func (c *platformCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == "" || !c.dirty {
		return nil
	}
	b, err := json.Marshal(c.m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.file, b, 0o600); err != nil {
		return err
	}
	c.dirty = false
	return nil
}
