package layout_test

import (
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
	"github.com/regmirror/regmirror/internal/testutil/storetest"
)

// TestStoreContract: an OCI layout passes the Store contract.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{Writable: true, New: func(t *testing.T, images []storetest.Image) (registry.Store, string) {
		s, err := layout.Open(registry.LayoutEndpoint(t.TempDir()), registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		storetest.PushAll(t, s, images)
		return s, ""
	}})
}
