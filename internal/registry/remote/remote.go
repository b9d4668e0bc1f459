// Package remote is the Store of a registry spoken to over the
// distribution API (go-containerregistry's remote package underneath). It
// owns what is particular to a registry: credentials and their refresh,
// cross-repository mounts and the blob ledger that keeps one upload per
// digest, cancelling the upload sessions of a failed push, paginated tag
// lists and catalogs, referrers, deletes, checking a login, and turning
// the errors users meet most often into messages that say how to fix them.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/auth"
	rtransport "github.com/regmirror/regmirror/internal/registry/transport"
)

// remoteStore is a registry spoken to over the distribution API.
type remoteStore struct {
	ep       registry.Endpoint
	host     string
	nameOpts []name.Option
	puller   *remote.Puller
	pusher   *remote.Pusher
	maxPages int
	pageSize int
	retry    rtransport.Retry
	ledger   *ledger
	rt       http.RoundTripper // our transport stack, below authentication
	auth     authn.Authenticator
	keychain authn.Keychain
}

// Open returns the Store of a registry endpoint.
func Open(ep registry.Endpoint, o registry.Options) (registry.Store, error) {
	host := ep.Host()
	var nameOpts []name.Option
	if ep.PlainHTTP || ep.SkipTLSVerify {
		// Let go-containerregistry try https first and fall back to
		// http; plainHTTPGuard refuses the fallback for other hosts.
		nameOpts = append(nameOpts, name.Insecure)
	}
	if _, err := name.NewRegistry(host, nameOpts...); err != nil {
		return nil, fmt.Errorf("registry %q: %w", ep.Registry, err)
	}
	if o.Hosts == nil {
		o.Hosts = rtransport.DefaultHosts()
	}
	o.Hosts.LimitHost(host, ep.MaxConcurrentRequests)
	led := newLedger()
	rt, err := rtransport.New(ep.TransportConfig(), o.Hosts, led.transport)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	if o.BlobsPerImage <= 0 {
		// As wide as the transfer gate: a 5-layer image copied alone
		// used to stream its fifth layer by itself at the end.
		o.BlobsPerImage = o.Hosts.Transfers
		if o.BlobsPerImage <= 0 { // no transfer cap: the default one
			o.BlobsPerImage = rtransport.DefaultPolicy().Transfers
		}
	}
	opts := []remote.Option{
		remote.WithTransport(rt),
		remote.WithJobs(o.BlobsPerImage),
	}
	store := &remoteStore{ep: ep, host: host, nameOpts: nameOpts, maxPages: o.Hosts.MaxTagPages, ledger: led, rt: rt}
	switch {
	case ep.Anonymous:
		store.auth = authn.Anonymous
	case ep.Username != "":
		store.auth = authn.FromConfig(authn.AuthConfig{Username: ep.Username, Password: ep.Password})
	default:
		store.keychain = o.Keychain
		if store.keychain == nil {
			store.keychain = auth.Keychain(host, o.Logger)
		}
		every := ep.AuthRefresh
		if every <= 0 && auth.CloudHelper(host) == "ecr" {
			every = auth.DefaultECRRefresh
		}
		if every > 0 {
			reg, err := name.NewRegistry(host, nameOpts...)
			if err != nil {
				return nil, fmt.Errorf("registry %q: %w", ep.Registry, err)
			}
			store.auth = auth.NewRefreshing(store.keychain, reg, every, o.Now)
		}
	}
	if store.auth != nil {
		opts = append(opts, remote.WithAuth(store.auth))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(store.keychain))
	}
	if o.PageSize > 0 {
		opts = append(opts, remote.WithPageSize(o.PageSize))
	}
	retry := rtransport.DefaultRetry
	if o.Retry != nil {
		retry = *o.Retry
	}
	store.retry, store.pageSize = retry, o.PageSize
	opts = append(opts, retry.RemoteOptions()...)
	if store.puller, err = remote.NewPuller(opts...); err != nil {
		return nil, err
	}
	if store.pusher, err = remote.NewPusher(opts...); err != nil {
		return nil, err
	}

	return store, nil
}

func (s *remoteStore) String() string { return s.host }

func (s *remoteStore) Ref(repo, ref string) string {
	return registry.FormatRef(s.host+"/"+s.ep.RepoPath(repo), ref)
}

// repo and reference are where every request path is made: a name that
// breaks the distribution grammar (a dot segment, a space, a tag with a
// slash) is refused here whatever let it through, since a reverse proxy in
// front of the registry would resolve "a/../../b" into another repository.
// go-containerregistry checks characters only.
func (s *remoteStore) repo(repo string) (name.Repository, error) {
	if err := registry.CheckRepository(s.ep.RepoPath(repo)); err != nil {
		return name.Repository{}, err
	}
	r, err := name.NewRepository(s.host+"/"+s.ep.RepoPath(repo), s.nameOpts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	return r, nil
}

func (s *remoteStore) reference(repo, ref string) (name.Reference, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if err := registry.CheckRef(ref); err != nil {
		return nil, err
	}
	if registry.IsDigest(ref) {
		return r.Digest(ref), nil
	}
	return r.Tag(ref), nil
}

func (s *remoteStore) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	// Pages are followed one by one so that an endless or looping Link
	// header ends in an error instead of a hang.
	l, err := s.puller.Lister(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", r, explain(s.host, err))
	}
	var tags []string
	seen := map[string]bool{}
	for pages := 0; l.HasNext(); pages++ {
		if pages >= s.maxPages {
			return nil, fmt.Errorf("listing tags of %s: more than %d pages: %w", r, s.maxPages, rtransport.ErrTooLarge)
		}
		page, err := l.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing tags of %s: %w", r, explain(s.host, err))
		}
		if page.Next != "" && seen[page.Next] {
			return nil, fmt.Errorf("listing tags of %s: the registry's Link header loops back to %s", r, page.Next)
		}
		seen[page.Next] = true
		tags = append(tags, page.Tags...)
	}
	return tags, nil
}

// Catalog lists the registry's repositories page by page (Link headers),
// bounded like Tags so that an endless or looping Link header ends in an
// error instead of a hang.
//
// The pages are fetched here rather than with go-containerregistry's
// Catalogger, which rejects every Link header of a TLS registry at a
// loopback or private address (it expects "http" there, while the requests
// went over https), and which asks for n=1000 by default, which registries
// with a smaller catalog.maxentries refuse.
func (s *remoteStore) Catalog(ctx context.Context, max int) ([]string, bool, error) {
	if registry.IsDockerHub(s.ep.Registry) {
		// Docker Hub answers /v2/_catalog with 401 whatever the
		// credentials; say so without asking.
		return nil, false, fmt.Errorf("%w: Docker Hub (%s) does not offer the registry catalog API (/v2/_catalog), so repositories cannot be discovered with from: regex: there; name each repository in its own mapping", registry.ErrNoCatalog, s.ep.Registry)
	}
	reg, err := name.NewRegistry(s.host, s.nameOpts...)
	if err != nil {
		return nil, false, fmt.Errorf("registry %q: %w", s.host, err)
	}
	client, err := s.registryClient(ctx, reg)
	if err != nil {
		// The ping failed: not a registry, or not reachable.
		return nil, false, fmt.Errorf("listing the catalog of %s: %w", s.host, explain(s.host, err))
	}
	first := url.URL{Scheme: reg.Scheme(), Host: reg.RegistryStr(), Path: "/v2/_catalog"}
	if s.pageSize > 0 {
		first.RawQuery = "n=" + strconv.Itoa(s.pageSize)
	}
	var repos []string
	seen := map[string]bool{}
	for next, pages := first.String(), 0; next != ""; pages++ {
		if pages >= s.maxPages {
			return nil, false, fmt.Errorf("listing the catalog of %s: more than %d pages: %w", s.host, s.maxPages, rtransport.ErrTooLarge)
		}
		var page []string
		page, next, err = catalogPage(ctx, client, next)
		if err != nil {
			return nil, false, s.catalogErr(err)
		}
		if next != "" && seen[next] {
			return nil, false, fmt.Errorf("listing the catalog of %s: the registry's Link header loops back to %s", s.host, next)
		}
		seen[next] = true
		repos = append(repos, page...)
		if max > 0 && len(repos) >= max {
			return repos[:max], len(repos) > max || next != "", nil
		}
	}
	return repos, false, nil
}

// maxCatalogPage bounds one catalog page's JSON.
const maxCatalogPage = 64 << 20

// catalogPage fetches one page and returns the next page's URL ("" at the
// end).
func catalogPage(ctx context.Context, client *http.Client, u string) ([]string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	var page struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxCatalogPage)).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("GET %s: reading the catalog: %w", u, err)
	}
	next, err := nextPage(resp)
	return page.Repositories, next, err
}

// nextPage reads a Link header (`</v2/_catalog?last=x&n=2>; rel="next"`),
// resolved against the request that got it. It must stay on the same host.
func nextPage(resp *http.Response) (string, error) {
	link := strings.TrimSpace(resp.Header.Get("Link"))
	if link == "" {
		return "", nil
	}
	target, _, _ := strings.Cut(strings.TrimPrefix(link, "<"), ">")
	if !strings.HasPrefix(link, "<") || target == "" {
		return "", fmt.Errorf("malformed Link header %q", link)
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("malformed Link header %q: %w", link, err)
	}
	if resp.Request != nil && resp.Request.URL != nil {
		u = resp.Request.URL.ResolveReference(u)
		if u.Host != resp.Request.URL.Host {
			return "", fmt.Errorf("the Link header points at another host (%s)", u.Host)
		}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("the Link header %q is not an http(s) URL", link)
	}
	return u.String(), nil
}

// authFor returns the store's credentials for a repository or the registry:
// the explicit ones, else what the keychain resolves.
func (s *remoteStore) authFor(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	if s.auth != nil {
		return s.auth, nil
	}
	return authn.Resolve(ctx, s.keychain, res)
}

// registryClient returns an HTTP client authenticated for registry-wide
// requests (the catalog), with the store's retries.
func (s *remoteStore) registryClient(ctx context.Context, reg name.Registry) (*http.Client, error) {
	auth, err := s.authFor(ctx, reg)
	if err != nil {
		return nil, err
	}
	rt := transport.NewRetry(s.rt, s.retry.TransportOptions()...)
	t, err := transport.NewWithContext(ctx, reg, auth, rt, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// catalogErr tells "this registry has no catalog for us" apart from a
// transient failure, which stays retryable.
func (s *remoteStore) catalogErr(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		no := false
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			no = true
		}
		for _, d := range terr.Errors {
			if d.Code == transport.UnsupportedErrorCode || d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				no = true
			}
		}
		if no {
			return fmt.Errorf("%w: %s does not offer its catalog (/v2/_catalog) to us (HTTP %d), so repositories cannot be discovered with from: regex:; check that the credentials may list the catalog, or name each repository in its own mapping: %w",
				registry.ErrNoCatalog, s.host, terr.StatusCode, err)
		}
	}
	return fmt.Errorf("listing the catalog of %s: %w", s.host, explain(s.host, err))
}

func (s *remoteStore) Head(ctx context.Context, repo, ref string) (v1.Descriptor, error) {
	r, err := s.reference(repo, ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := s.puller.Head(ctx, r)
	if err != nil {
		return v1.Descriptor{}, explain(s.host, err)
	}
	return *d, nil
}

func (s *remoteStore) Fetch(ctx context.Context, repo, ref string) (*registry.Artifact, error) {
	r, err := s.reference(repo, ref)
	if err != nil {
		return nil, err
	}
	d, err := s.puller.Get(ctx, r)
	if err != nil {
		return nil, explain(s.host, err)
	}
	a := &registry.Artifact{Desc: d.Descriptor}
	switch {
	case d.MediaType.IsIndex():
		a.Index, err = d.ImageIndex()
	case d.MediaType.IsImage():
		a.Image, err = d.Image()
	default:
		err = fmt.Errorf("unsupported manifest media type %q", d.MediaType)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (s *remoteStore) Push(ctx context.Context, repo, ref string, a *registry.Artifact) (int64, error) {
	r, err := s.reference(repo, ref)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	o := &owner{}
	ctx = context.WithValue(rtransport.WithByteCounter(ctx, &n), ownerKey{}, o)
	if tag, ok := r.(name.Tag); ok {
		ctx = context.WithValue(ctx, tagCheckedKey{}, "/v2/"+tag.RepositoryStr()+"/manifests/"+tag.TagStr())
	}
	a = s.mountable(ctx, r.Context(), a)
	var t remote.Taggable = a.Image
	if a.Index != nil {
		t = a.Index
	}
	err = s.pusher.Push(ctx, r, t)
	for i := 0; i < 3 && borrowed(err, r); i++ {
		// go-containerregistry shares one result per manifest digest
		// among the pushes of a repository: a push of the same digest
		// under another tag failed, and this one was handed its error.
		// That result is dropped once it fails, so pushing again runs
		// this push's own requests.
		err = s.pusher.Push(ctx, r, t)
	}
	if err != nil {
		s.ledger.settle(o, rtransport.UploadGrace+5*time.Second)
	}
	open := s.ledger.finish(o)
	if err != nil {
		s.cancelSessions(ctx, r.Context(), open)
		return n.Load(), explain(s.host, err)
	}
	return n.Load(), nil
}

// borrowed reports whether err is the failure of a manifest PUT under
// another tag than r's: another push's error.
func borrowed(err error, r name.Reference) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.Request == nil || terr.Request.Method != http.MethodPut {
		return false
	}
	repo, ref, ok := strings.Cut(strings.TrimPrefix(terr.Request.URL.Path, "/v2/"), "/manifests/")
	return ok && repo == r.Context().RepositoryStr() && ref != r.Identifier() && !registry.IsDigest(ref)
}

// authClient returns an HTTP client authenticated for pushing to repo, for
// the few requests go-containerregistry does not make for us.
func (s *remoteStore) authClient(ctx context.Context, repo name.Repository) (*http.Client, error) {
	auth, err := s.authFor(ctx, repo)
	if err != nil {
		return nil, err
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, s.rt, []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}
