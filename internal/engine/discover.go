package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/regmirror/regmirror/internal/registry"
)

// Lister says how the repositories of a task's source are listed for its
// `from: regex:` mappings (dregsy's `lister:` settings).
type Lister struct {
	// MaxItems caps how many repositories are listed; <= 0: no cap
	// (dregsy's -1). dregsy's default, which the config supplies, is 100.
	MaxItems int
	// CacheDuration is how long a listing is reused by later runs of the
	// same engine (the daemon keeps one engine); <= 0: every run lists
	// anew. Mappings of one run always share one listing.
	CacheDuration time.Duration
	// Type is dregsy's lister type. "" and "catalog" list the registry
	// catalog, and so do "ecr" and "gcr" (both registries serve one);
	// "dockerhub" and "index" use Docker Hub's own APIs, which regmirror
	// does not speak: mappings that need them fail with ErrListerType.
	Type string
}

// ErrListerType is returned (wrapped) for a dregsy lister type regmirror
// does not implement.
var ErrListerType = errors.New("unsupported lister type")

// catalogCache keeps repository listings per source and MaxItems. It lives
// as long as the Engine, so a daemon reuses listings across runs.
type catalogCache struct {
	mu      sync.Mutex
	entries map[string]*catalogEntry
}

type catalogEntry struct {
	mu        sync.Mutex // held while listing: concurrent mappings share one listing
	ok        bool
	repos     []string
	truncated bool
	at        time.Time // when it was listed
	run       uint64    // the run that listed it
}

func (c *catalogCache) entry(key string) *catalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*catalogEntry{}
	}
	ent, ok := c.entries[key]
	if !ok {
		ent = &catalogEntry{}
		c.entries[key] = ent
	}
	return ent
}

// listing is a source's repository list as a mapping sees it.
type listing struct {
	repos     []string
	truncated bool // cut at MaxItems
	cached    bool // reused, no request made
}

// listRepos returns the repositories of a task's source, from the cache
// when an earlier listing is still fresh (or was made by this run).
// Failures are not cached.
func (e *Engine) listRepos(ctx context.Context, run uint64, t *Task, src registry.Store) (listing, error) {
	switch t.Lister.Type {
	case "", "catalog", "ecr", "gcr":
	default:
		return listing{}, fmt.Errorf("%w %q: regmirror lists repositories with the registry catalog (/v2/_catalog) only; remove the lister type to use it, or name each repository in its own mapping", ErrListerType, t.Lister.Type)
	}
	ent := e.catalogs.entry(t.Source.Key() + "\x00" + strconv.Itoa(t.Lister.MaxItems))
	ent.mu.Lock()
	defer ent.mu.Unlock()
	now := e.now()
	if ent.ok && (ent.run == run || (t.Lister.CacheDuration > 0 && now.Sub(ent.at) < t.Lister.CacheDuration)) {
		return listing{repos: ent.repos, truncated: ent.truncated, cached: true}, nil
	}
	repos, truncated, err := src.Catalog(ctx, t.Lister.MaxItems)
	if err != nil {
		return listing{}, err
	}
	ent.ok, ent.repos, ent.truncated, ent.at, ent.run = true, repos, truncated, now, run
	if truncated {
		e.log.Warn("repository list cut at lister.maxItems; repositories past it are not considered (set maxItems: -1 for no limit)",
			"task", t.Name, "source", src.String(), "max_items", t.Lister.MaxItems)
	}
	return listing{repos: repos, truncated: truncated}, nil
}
