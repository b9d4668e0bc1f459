// Package shard splits the work of a configuration between several
// regmirror processes (pods of a Kubernetes Indexed Job or StatefulSet,
// hosts of a fleet) so that each piece is done by exactly one of them.
//
// Two granularities: by repository (the default), a shard owns the (task,
// source repository) pairs that hash to it, so one task that discovers
// 2,000 repositories is spread over every shard; by task, a shard owns
// whole tasks. Either way ownership depends only on the names and the
// shard count, never on the order or number of other tasks or
// repositories, so adding one moves nothing else to another shard.
//
// Pure functions, no I/O.
package shard

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Spec is one shard out of Count: "--shard INDEX/COUNT". The zero Spec
// (Count 0) owns every task.
type Spec struct {
	Index, Count int
}

// Parse reads "INDEX/COUNT" with 0 <= INDEX < COUNT (INDEX counts from 0,
// as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX does). An empty string
// is the zero Spec: no sharding.
func Parse(s string) (Spec, error) {
	if s == "" {
		return Spec{}, nil
	}
	is, cs, ok := strings.Cut(s, "/")
	if !ok {
		return Spec{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/3", s)
	}
	i, err := strconv.Atoi(strings.TrimSpace(is))
	if err != nil {
		return Spec{}, fmt.Errorf("shard %q: INDEX %q is not a number", s, is)
	}
	c, err := strconv.Atoi(strings.TrimSpace(cs))
	if err != nil {
		return Spec{}, fmt.Errorf("shard %q: COUNT %q is not a number", s, cs)
	}
	if c < 1 {
		return Spec{}, fmt.Errorf("shard %q: COUNT must be at least 1", s)
	}
	if i < 0 || i >= c {
		return Spec{}, fmt.Errorf("shard %q: INDEX must be between 0 and %d (INDEX counts from 0)", s, c-1)
	}
	return Spec{Index: i, Count: c}, nil
}

// String renders the spec as the flag takes it ("" when unsharded).
func (s Spec) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Of returns the shard that owns a task name out of count shards: the
// FNV-1a 64-bit hash of the name modulo count. It is stable across
// versions and platforms; changing it would move tasks between shards.
func Of(name string, count int) int {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int(h.Sum64() % uint64(count))
}

// Owns reports whether this shard runs the task with the given name.
func (s Spec) Owns(name string) bool {
	return s.Count <= 1 || Of(name, s.Count) == s.Index
}

// OfRepository returns the shard that owns a source repository of a task
// out of count shards. The FNV-1a 64-bit hash of "TASK\x00REPO" is mixed
// with MurmurHash3's 64-bit finaliser before the modulo: FNV alone leaves
// names that differ only in their last characters (repo-0001, repo-0002,
// ...) unevenly spread over small counts. Stable across versions and
// platforms, pinned by a test.
func OfRepository(task, repo string, count int) int {
	h := fnv.New64a()
	h.Write([]byte(task))
	h.Write([]byte{0})
	h.Write([]byte(repo))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return int(x % uint64(count))
}

// OwnsRepository reports whether this shard copies (and prunes) the given
// source repository of a task.
func (s Spec) OwnsRepository(task, repo string) bool {
	return s.Count <= 1 || OfRepository(task, repo, s.Count) == s.Index
}

// By is what a shard owns: whole tasks or (task, repository) pairs.
type By string

const (
	ByRepository By = "repository"
	ByTask       By = "task"
)

// ParseBy reads --shard-by: "repository" (also "" and "repo") or "task".
func ParseBy(s string) (By, error) {
	switch s {
	case "", "repository", "repo":
		return ByRepository, nil
	case "task":
		return ByTask, nil
	}
	return "", fmt.Errorf("shard-by %q: want repository or task", s)
}
