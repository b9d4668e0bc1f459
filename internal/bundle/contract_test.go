package bundle

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
	"github.com/regmirror/regmirror/internal/testutil/storetest"
)

// TestSourceStoreContract: a bundle read as import's source passes the
// read half of the Store contract, in both its forms. The fixtures are
// pushed to an in-process registry and exported as sync would copy them.
func TestSourceStoreContract(t *testing.T) {
	for _, form := range []string{"bundle", "bundle.tar"} {
		t.Run(form, func(t *testing.T) {
			storetest.Run(t, storetest.Harness{New: func(t *testing.T, images []storetest.Image) (registry.Store, string) {
				reg := regtest.New(t)
				ep := registry.Endpoint{Registry: reg.Host, PlainHTTP: true}
				s, err := remote.Open(ep, registry.Options{})
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				var maps []engine.Mapping
				storetest.PushAll(t, s, images)
				for _, im := range images {
					if !seen[im.Repo] {
						seen[im.Repo] = true
						maps = append(maps, engine.Mapping{From: im.Repo, To: im.Repo})
					}
				}
				out := filepath.Join(t.TempDir(), form)
				res, err := Export(context.Background(), ExportOptions{
					Engine: engine.New(engine.Options{}),
					Tasks:  []engine.Task{{Name: "contract", Source: ep, Mappings: maps}},
					Output: out,
					Now:    func() time.Time { return time.Unix(1e9, 0) },
				})
				if err != nil {
					t.Fatal(err)
				}
				if n := res.Report.Failed(); n != 0 {
					t.Fatalf("%d failed: %v", n, res.Report.Results)
				}
				b, err := Open(out)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				return newSource(b, nil, nil), NamePrefix(ep) + "/"
			}})
		})
	}
}
