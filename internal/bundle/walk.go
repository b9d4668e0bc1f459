package bundle

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// manifestRefs is what a manifest references: an index's children, an
// image's config and layers. (A subject is what an attachment points at,
// not part of it.)
type manifestRefs struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
	Subject   *v1.Descriptor  `json:"subject"`
}

// walk calls visit for d and, when d is a manifest visit accepts and read
// can return, for everything it references, depth first. visit returns
// false to skip what d references (a blob already seen, or one that is not
// here). Layers with non-distributable media types are skipped: clients
// fetch them from their URLs.
func walk(d v1.Descriptor, read func(v1.Hash) ([]byte, error), visit func(d v1.Descriptor, isManifest bool) bool) error {
	isManifest := d.MediaType.IsIndex() || d.MediaType.IsImage()
	if !visit(d, isManifest) || !isManifest {
		return nil
	}
	raw, err := read(d.Digest)
	if err != nil {
		return err
	}
	var m manifestRefs
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	for _, c := range m.Manifests {
		if err := walk(c, read, visit); err != nil {
			return err
		}
	}
	if m.Config != nil {
		if err := walk(*m.Config, read, visit); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		if !l.MediaType.IsDistributable() {
			continue
		}
		if err := walk(l, read, visit); err != nil {
			return err
		}
	}
	return nil
}
