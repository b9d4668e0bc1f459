// Package stores opens the Store behind an endpoint, whatever its kind. It
// is the one package that sees every Store implementation, so the root
// registry package (which they all import) need not.
package stores

import (
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
	"github.com/regmirror/regmirror/internal/registry/remote"
)

// Open returns the Store for an endpoint: an OCI layout for "oci:PATH",
// else a registry.
func Open(ep registry.Endpoint, o registry.Options) (registry.Store, error) {
	if ep.IsLayout() {
		return layout.Open(ep, o)
	}
	return remote.Open(ep, o)
}
