// Package bundle owns regmirror's air-gap bundles: an OCI image layout (a
// directory or a .tar of one) holding the images a config selects, plus a
// bundle manifest of its own (regmirror-bundle.json) saying when and from
// what config it was made, which images it completes and which earlier
// bundle it builds on. Export fills a bundle through the engine with the
// layout as the target; import runs the engine with the bundle as the
// source; verify checks a bundle without any registry.
//
// Blobs and manifests are stored under their digests and checked against
// them whenever they are read, so a corrupted byte fails the image that
// needs it and nothing else.
//
// bundle drives a caller's *engine.Engine and hands it its stores in the
// tasks (engine.Task.TargetStore for export, SourceStore for import); it
// reports progress through plain callbacks (the engine's, and
// ImportOptions.OnTotal/OnBytes), never draws anything itself, and walks
// manifests with registry.Walk. It writes layouts through registry/layout.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ManifestFile is the bundle manifest's name at the layout's root.
const ManifestFile = "regmirror-bundle.json"

// MediaType marks a regmirror bundle manifest.
const MediaType = "application/vnd.regmirror.bundle.v1+json"

// Manifest is regmirror-bundle.json. It never holds credentials: the
// config is named and hashed, not copied.
type Manifest struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	// ID is "sha256:" and the hash of this manifest written with an empty
	// id: two bundles never share one.
	ID string `json:"id"`
	// Name is the bundle's file or directory name as exported, used in
	// messages ("import bundle-1.tar first").
	Name    string     `json:"name"`
	Created time.Time  `json:"created"`
	Config  *ConfigRef `json:"config,omitempty"`
	// Parent is the bundle given to --since; Chain lists every earlier
	// bundle this one builds on, oldest first (Parent last).
	Parent *Ref  `json:"parent,omitempty"`
	Chain  []Ref `json:"chain,omitempty"`
	// Images is every image the bundle completes: those whose manifests
	// it holds (Bundle is this bundle's ID) and, for an incremental
	// bundle, those an earlier bundle of the chain holds unchanged.
	Images []Image `json:"images"`
	// Blobs is every blob (layers, configs, manifests) stored in this
	// bundle.
	Blobs []Blob `json:"blobs"`
	// Inherits is every blob held by an earlier bundle of the chain, with
	// the bundle that holds it: this bundle's images may need them, and
	// a later --since skips them.
	Inherits []Blob `json:"inherits,omitempty"`
}

// ConfigRef names the config a bundle was exported from.
type ConfigRef struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// Ref names another bundle.
type Ref struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Image is one image a bundle completes.
type Image struct {
	// Name is the image's original reference: source registry, repository
	// and tag ("docker.io/library/busybox:1.36").
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Bundle is the ID of the bundle holding the manifest.
	Bundle string `json:"bundle"`
	// Subject is the digest of the image this one is attached to (an OCI
	// referrer: a signature, attestation or SBOM stored by digest).
	Subject string `json:"subject,omitempty"`
}

// Blob is one blob, with a repository (an image name without tag) that
// uses it and, for inherited blobs, the bundle that holds it.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Repo   string `json:"repo,omitempty"`
	Bundle string `json:"bundle,omitempty"`
}

// Ref returns the reference other bundles use for m.
func (m *Manifest) Ref() Ref { return Ref{ID: m.ID, Name: m.Name, Created: m.Created} }

// Describe names a bundle for messages.
func (r Ref) Describe() string {
	id := r.ID
	if len(id) > 19 {
		id = id[:19]
	}
	return fmt.Sprintf("bundle %q (id %s, created %s)", r.Name, id, r.Created.UTC().Format(time.RFC3339))
}

// refByID finds a bundle of m's chain (or m itself) by ID.
func (m *Manifest) refByID(id string) Ref {
	if id == m.ID {
		return m.Ref()
	}
	for _, r := range m.Chain {
		if r.ID == id {
			return r
		}
	}
	return Ref{ID: id, Name: "unknown"}
}

// seal sets the ID from the content and returns the encoded manifest.
func (m *Manifest) seal() ([]byte, error) {
	m.ID = ""
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	m.ID = "sha256:" + hex.EncodeToString(sum[:])
	return json.MarshalIndent(m, "", "  ")
}

// contentID recomputes the ID from the content: what seal hashed, with the
// bundle of the images this bundle holds left empty as it was then.
func (m *Manifest) contentID() (string, error) {
	c := *m
	c.ID = ""
	c.Images = make([]Image, len(m.Images))
	for i, im := range m.Images {
		if im.Bundle == m.ID {
			im.Bundle = ""
		}
		c.Images[i] = im
	}
	if m.Images == nil {
		c.Images = nil
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func parseManifest(name string, b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, ManifestFile, err)
	}
	if m.MediaType != MediaType || m.SchemaVersion != 1 {
		return nil, fmt.Errorf("%s: %s: not a regmirror bundle manifest (mediaType %q, schemaVersion %d)", name, ManifestFile, m.MediaType, m.SchemaVersion)
	}
	if m.ID == "" {
		return nil, fmt.Errorf("%s: %s: no id", name, ManifestFile)
	}
	return &m, nil
}
