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
