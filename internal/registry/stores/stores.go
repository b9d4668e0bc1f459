// Package stores opens the Store behind an endpoint, whatever its kind. It
// is the one package that sees every Store implementation, so the root
// registry package (which they all import) need not.
package stores

import (
	"fmt"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
	"github.com/regmirror/regmirror/internal/registry/remote"
)

// constructors open a Store of each kind registry.ParseLocation knows.
var constructors = map[registry.Kind]func(registry.Endpoint, registry.Options) (registry.Store, error){
	registry.KindRegistry: remote.Open,
	registry.KindLayout:   layout.Open,
}

// Open returns the Store for an endpoint.
func Open(ep registry.Endpoint, o registry.Options) (registry.Store, error) {
	open, ok := constructors[ep.Kind()]
	if !ok {
		return nil, fmt.Errorf("%s %q: no store for this kind", ep.Kind(), ep.Registry)
	}
	return open(ep, o)
}
