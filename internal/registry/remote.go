package registry

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options tune how stores talk to registries.
type Options struct {
	// Jobs caps concurrent blob transfers within one image (default 4).
	Jobs int
	// UserAgent is sent with every request.
	UserAgent string
	// Keychain resolves credentials when an endpoint has none of its own
	// (default: docker's config.json with credential helpers).
	Keychain authn.Keychain
	// Retry overrides go-containerregistry's retry backoff (tests make it
	// fast).
	Retry *remote.Backoff
	// PageSize asks for tag lists in pages of this size (0: the
	// registry's default). Pages are always followed via the Link header.
	PageSize int
}

// remoteStore is a registry spoken to over the distribution API.
type remoteStore struct {
	ep       Endpoint
	host     string
	nameOpts []name.Option
	puller   *remote.Puller
	pusher   *remote.Pusher
}

// Open returns the Store for an endpoint.
func Open(ep Endpoint, o Options) (Store, error) {
	if ep.IsLayout() {
		return openLayout(ep)
	}
	host := ep.host()
	var nameOpts []name.Option
	if ep.PlainHTTP || ep.SkipTLSVerify {
		// Let go-containerregistry try https first and fall back to
		// http; plainHTTPGuard refuses the fallback for other hosts.
		nameOpts = append(nameOpts, name.Insecure)
	}
	if _, err := name.NewRegistry(host, nameOpts...); err != nil {
		return nil, fmt.Errorf("registry %q: %w", ep.Registry, err)
	}
	rt, err := newTransport(ep)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.UserAgent == "" {
		o.UserAgent = "regmirror"
	}
	opts := []remote.Option{
		remote.WithTransport(rt),
		remote.WithJobs(o.Jobs),
		remote.WithUserAgent(o.UserAgent),
	}
	switch {
	case ep.Anonymous:
		opts = append(opts, remote.WithAuth(authn.Anonymous))
	case ep.Username != "":
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: ep.Username, Password: ep.Password})))
	default:
		kc := o.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		opts = append(opts, remote.WithAuthFromKeychain(kc))
	}
	if o.PageSize > 0 {
		opts = append(opts, remote.WithPageSize(o.PageSize))
	}
	if o.Retry != nil {
		opts = append(opts, remote.WithRetryBackoff(*o.Retry))
	}
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	return &remoteStore{ep: ep, host: host, nameOpts: nameOpts, puller: puller, pusher: pusher}, nil
}

func (s *remoteStore) String() string { return s.host }

func (s *remoteStore) Ref(repo, ref string) string {
	return formatRef(s.host+"/"+s.ep.RepoPath(repo), ref)
}

func formatRef(repo, ref string) string {
	if _, err := v1.NewHash(ref); err == nil {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

func (s *remoteStore) repo(repo string) (name.Repository, error) {
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
	if _, err := v1.NewHash(ref); err == nil {
		return r.Digest(ref), nil
	}
	t := r.Tag(ref)
	if t.TagStr() != ref {
		return nil, fmt.Errorf("invalid tag %q", ref)
	}
	return t, nil
}

func (s *remoteStore) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	tags, err := s.puller.List(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", r, explain(s.host, err))
	}
	return tags, nil
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

func (s *remoteStore) Fetch(ctx context.Context, repo, ref string) (*Artifact, error) {
	r, err := s.reference(repo, ref)
	if err != nil {
		return nil, err
	}
	d, err := s.puller.Get(ctx, r)
	if err != nil {
		return nil, explain(s.host, err)
	}
	a := &Artifact{Desc: d.Descriptor}
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

func (s *remoteStore) Push(ctx context.Context, repo, ref string, a *Artifact) (int64, error) {
	r, err := s.reference(repo, ref)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	ctx = WithByteCounter(ctx, &n)
	var t remote.Taggable = a.Image
	if a.Index != nil {
		t = a.Index
	}
	if err := s.pusher.Push(ctx, r, t); err != nil {
		return n.Load(), explain(s.host, err)
	}
	return n.Load(), nil
}
