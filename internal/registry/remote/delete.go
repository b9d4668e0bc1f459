package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
)

func (s *remoteStore) Delete(ctx context.Context, repo, digest string) error {
	r, err := s.repo(repo)
	if err != nil {
		return err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return fmt.Errorf("deleting %q: %w", digest, err)
	}
	ref := r.Digest(digest)
	err = s.pusher.Delete(ctx, ref)
	var terr *transport.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusMethodNotAllowed || hasCode(terr, transport.UnsupportedErrorCode)):
		// distribution answers 405 UNSUPPORTED unless deletes are
		// enabled; say which setting, since nobody remembers it.
		return fmt.Errorf("deleting %s: %w (%s answered %d: on distribution/docker-registry set storage.delete.enabled: true, "+
			"or REGISTRY_STORAGE_DELETE_ENABLED=true; on Harbor, Nexus or Artifactory give the account delete permission): %w",
			ref, registry.ErrDeleteRefused, s.host, terr.StatusCode, err)
	}
	err = explain(s.host, err)
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("deleting %s: %w", ref, err)
}

func hasCode(terr *transport.Error, code transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

func (s *remoteStore) HasBlob(ctx context.Context, repo, digest string) (bool, error) {
	r, err := s.repo(repo)
	if err != nil {
		return false, err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return false, fmt.Errorf("blob %q: %w", digest, err)
	}
	c, err := s.scopedClient(ctx, r, transport.PullScope)
	if err != nil {
		return false, fmt.Errorf("blob %s@%s: %w", r, digest, explain(s.host, err))
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.Scheme(), r.RegistryStr(), r.RepositoryStr(), digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, fmt.Errorf("blob %s@%s: %w", r, digest, explain(s.host, err))
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("blob %s@%s: %w", r, digest, explain(s.host, transport.CheckError(resp, http.StatusOK)))
}

// scopedClient returns an HTTP client authenticated for repo with one
// scope (pull, push), over our transport stack.
func (s *remoteStore) scopedClient(ctx context.Context, repo name.Repository, scope string) (*http.Client, error) {
	auth := s.auth
	if auth == nil {
		var err error
		if auth, err = authn.Resolve(ctx, s.keychain, repo); err != nil {
			return nil, err
		}
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, s.rt, []string{repo.Scope(scope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

var (
	_ registry.Deleter        = (*remoteStore)(nil)
	_ registry.BlobChecker    = (*remoteStore)(nil)
	_ registry.ReferrerLister = (*remoteStore)(nil)
)
