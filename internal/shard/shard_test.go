package shard

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{"", Spec{}, ""},
		{"0/1", Spec{0, 1}, ""},
		{"2/3", Spec{2, 3}, ""},
		{"3/3", Spec{}, "INDEX must be between 0 and 2"},
		{"-1/3", Spec{}, "INDEX must be between 0 and 2"},
		{"0/0", Spec{}, "COUNT must be at least 1"},
		{"1", Spec{}, "want INDEX/COUNT"},
		{"a/3", Spec{}, `INDEX "a" is not a number`},
		{"1/b", Spec{}, `COUNT "b" is not a number`},
	} {
		got, err := Parse(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Parse(%q) err = %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if got.String() != c.in {
			t.Errorf("Parse(%q).String() = %q", c.in, got.String())
		}
	}
}

// Of is FNV-1a 64 mod COUNT. Pinned values: a change here would silently
// move tasks between the pods of every deployed Indexed Job.
func TestOfIsStable(t *testing.T) {
	for _, c := range []struct {
		name  string
		count int
		want  int
	}{
		// FNV-1a 64 of "" is the offset basis 0xcbf29ce484222325.
		{"", 7, int(uint64(0xcbf29ce484222325) % 7)},
		// FNV-1a 64("a") = 0xaf63dc4c8601ec8c.
		{"a", 1000, int(uint64(0xaf63dc4c8601ec8c) % 1000)},
		{"sync_spaceone_core", 1, 0},
	} {
		if got := Of(c.name, c.count); got != c.want {
			t.Errorf("Of(%q, %d) = %d, want %d", c.name, c.count, got, c.want)
		}
	}
}

// For every count, each name is owned by exactly one shard (a partition),
// and the split is balanced enough to be useful.
func TestSplitIsAPartition(t *testing.T) {
	names := make([]string, 300)
	for i := range names {
		names[i] = fmt.Sprintf("task-%03d", i)
	}
	for count := 1; count <= 8; count++ {
		per := make([]int, count)
		for _, n := range names {
			owners := 0
			for i := range count {
				if (Spec{Index: i, Count: count}).Owns(n) {
					owners++
					per[i]++
				}
			}
			if owners != 1 {
				t.Fatalf("count %d: %q owned by %d shards", count, n, owners)
			}
			// Stable: the same answer on every call.
			if Of(n, count) != Of(n, count) {
				t.Fatalf("Of(%q, %d) not stable", n, count)
			}
		}
		for i, k := range per {
			if k < len(names)/count/2 {
				t.Errorf("count %d: shard %d owns only %d of %d tasks (%v)", count, i, k, len(names), per)
			}
		}
	}
	// Ownership depends on the name alone: the zero Spec owns all.
	if !(Spec{}).Owns("anything") {
		t.Error("the zero Spec must own every task")
	}
}

// OfRepository is pinned like Of: changing it would move repositories
// between the pods of every deployed StatefulSet or Indexed Job.
func TestOfRepositoryIsStable(t *testing.T) {
	for _, c := range []struct {
		task, repo string
		count      int
		want       int
	}{
		{"mirror", "library/nginx", 1, 0},
		{"mirror", "library/nginx", 3, pinned(t, "mirror", "library/nginx", 3)},
		// Literal values, computed once when the hash was chosen.
		{"mirror", "library/nginx", 1000, 83},
		{"sync_vendor", "vendor/app", 7, 0},
	} {
		if got := OfRepository(c.task, c.repo, c.count); got != c.want {
			t.Errorf("OfRepository(%q, %q, %d) = %d, want %d", c.task, c.repo, c.count, got, c.want)
		}
	}
	// The task is part of the key: the same repository of two tasks
	// may land on different shards (and here does).
	if OfRepository("a", "r", 1000) == OfRepository("b", "r", 1000) {
		t.Error("task does not enter the repository hash")
	}
	// And the separator keeps ("ab","c") apart from ("a","bc").
	if OfRepository("ab", "c", 1<<30) == OfRepository("a", "bc", 1<<30) {
		t.Error(`("ab","c") and ("a","bc") hash alike`)
	}
}

// pinned recomputes OfRepository from its definition with a literal
// FNV-1a 64 loop, so a change to either the hash or the mix shows.
func pinned(t *testing.T, task, repo string, count int) int {
	t.Helper()
	x := uint64(0xcbf29ce484222325)
	for _, b := range []byte(task + "\x00" + repo) {
		x ^= uint64(b)
		x *= 0x100000001b3
	}
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return int(x % uint64(count))
}

// 1,000 repository names of the shape catalogs have, over 1..8 shards:
// each owned by exactly one shard, none holding more than 1.25 times the
// mean.
func TestRepositorySplitIsBalanced(t *testing.T) {
	for _, pattern := range []string{"vendor/repo-%04d", "team/app%d/image", "%d"} {
		for count := 1; count <= 8; count++ {
			per := make([]int, count)
			for i := range 1000 {
				repo := fmt.Sprintf(pattern, i)
				owners := 0
				for s := range count {
					if (Spec{Index: s, Count: count}).OwnsRepository("mirror_vendor", repo) {
						owners++
						per[s]++
					}
				}
				if owners != 1 {
					t.Fatalf("%s over %d: %q owned by %d shards", pattern, count, repo, owners)
				}
			}
			mean := 1000.0 / float64(count)
			for s, k := range per {
				if float64(k) > 1.25*mean {
					t.Errorf("%s over %d shards: shard %d holds %d repositories, more than 1.25x the mean %.1f (%v)", pattern, count, s, k, mean, per)
				}
			}
		}
	}
}

func TestParseBy(t *testing.T) {
	for in, want := range map[string]By{"": ByRepository, "repository": ByRepository, "repo": ByRepository, "task": ByTask} {
		if got, err := ParseBy(in); err != nil || got != want {
			t.Errorf("ParseBy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseBy("tag"); err == nil || !strings.Contains(err.Error(), "want repository or task") {
		t.Errorf("ParseBy(tag) err = %v", err)
	}
}
