package registry

import (
	"context"
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Deleter is a Store that can delete manifests (prune). The remote and
// layout stores implement it; a bundle read as a source does not.
type Deleter interface {
	// Delete deletes the manifest with this digest from repo, and with it
	// every tag of repo that points at it (the distribution API has no
	// other way). A manifest that is already gone is not an error.
	Delete(ctx context.Context, repo, digest string) error
}

// BlobChecker is a Store that can say whether it holds a blob (plan's byte
// estimate). The remote and layout stores implement it.
type BlobChecker interface {
	// HasBlob asks whether repo holds the blob (a HEAD request for a
	// registry; a layout holds its blobs for every repository).
	HasBlob(ctx context.Context, repo, digest string) (bool, error)
}

// ErrDeleteRefused is returned (wrapped) when a registry does not allow
// deleting manifests.
var ErrDeleteRefused = errors.New("the registry refuses to delete manifests")

// ReferrerLister is implemented by stores that can list OCI referrers
// (remote registries; OCI layouts do not).
type ReferrerLister interface {
	// Referrers returns the descriptors of the manifests whose subject is
	// digest in repo: from the referrers API, or from the fallback tag when
	// the registry lacks the API. No referrers is an empty list, not an
	// error.
	Referrers(ctx context.Context, repo, digest string) ([]v1.Descriptor, error)
}

// MountSource is implemented by layers that know a repository of the
// target likely to hold them already (an air-gap import knows where an
// earlier bundle put a blob it inherits). The push then tries a cross-repo
// mount from there before it would read the layer.
type MountSource interface {
	// MountFrom is a repository path on the target ("" for none).
	MountFrom() string
}
