package registry

import (
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regmirror/regmirror/internal/registry/transport"
)

// Options tune how stores talk to registries.
type Options struct {
	// BlobsPerImage caps concurrent blob transfers within one image
	// (default: Hosts.Transfers, or 8 when that is unlimited). How many
	// images are copied at once is the engine's business; how many blobs
	// are in flight across all of them is Hosts.Transfers, so one image
	// of many layers may use every transfer slot while it is alone.
	BlobsPerImage int
	// Keychain resolves credentials when an endpoint has none of its own
	// (default: docker's config.json with credential helpers, then the
	// cloud keychain for ECR and Google hosts; see auth.CloudHelper).
	Keychain authn.Keychain
	// Now is the clock for credential refresh (tests inject one).
	Now func() time.Time
	// Logger receives debug lines from cloud credential helpers; nil
	// discards.
	Logger *slog.Logger
	// Retry overrides the request retry policy (tests make it fast).
	Retry *transport.Retry
	// Hosts is the transport policy and per-host state shared by every
	// store opened with these Options (the global transfer limit, per-host
	// waits and request caps, pull counts). Nil: each store gets its own
	// transport.DefaultHosts, shared with nobody.
	Hosts *transport.Hosts
	// PageSize asks for tag lists and catalogs in pages of this size (0:
	// tag lists in pages of 1000, go-containerregistry's default, and the
	// catalog in pages of the registry's choosing). Pages are always
	// followed via the Link header.
	PageSize int
}
