// Package shard splits tasks between several regmirror processes (pods of
// a Kubernetes Indexed Job, hosts of a fleet) so that each task is run by
// exactly one of them. Ownership depends only on the task's name and the
// shard count, never on the order or number of other tasks, so adding a
// task to the config moves no other task to another shard.
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
