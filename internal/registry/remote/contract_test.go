package remote_test

import (
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
	"github.com/regmirror/regmirror/internal/testutil/storetest"
)

// TestStoreContract: a registry (the in-process distribution registry, with
// bearer-token auth) passes the Store contract.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{Writable: true, New: func(t *testing.T, images []storetest.Image) (registry.Store, string) {
		reg := regtest.New(t, regtest.WithTokenAuth("u", "p"))
		s, err := remote.Open(registry.Endpoint{Registry: reg.Host, PlainHTTP: true, Username: "u", Password: "p"}, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		storetest.PushAll(t, s, images)
		return s, ""
	}})
}
