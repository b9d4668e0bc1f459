package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
	rtransport "github.com/regmirror/regmirror/internal/registry/transport"
)

// ErrLoginRejected is returned (wrapped) when a registry refuses the
// credentials given to CheckLogin.
var ErrLoginRejected = errors.New("login rejected")

// CheckLogin proves that the endpoint's Username and Password open the
// registry, the way "docker login" does: ping /v2/, answer the challenge
// (a token request for bearer registries, which is where those check the
// password), then GET /v2/ with the credentials – the step that checks
// them on registries using basic auth.
func CheckLogin(ctx context.Context, ep registry.Endpoint, o registry.Options) error {
	if !ep.Kind().Network() {
		return fmt.Errorf("%s is an %s, not a registry", ep.Registry, ep.Kind())
	}
	host := ep.Host()
	var nameOpts []name.Option
	if ep.PlainHTTP || ep.SkipTLSVerify {
		nameOpts = append(nameOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return fmt.Errorf("registry %q: %w", ep.Registry, err)
	}
	if o.Hosts == nil {
		o.Hosts = rtransport.DefaultHosts()
	}
	rt, err := rtransport.New(ep.TransportConfig(), o.Hosts, nil)
	if err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: ep.Username, Password: ep.Password})
	t, err := transport.NewWithContext(ctx, reg, auth, rt, nil)
	if err != nil {
		return rejected(host, err)
	}
	client := &http.Client{Transport: t}
	schemes := []string{"https"}
	if ep.PlainHTTP || ep.SkipTLSVerify {
		schemes = append(schemes, "http")
	}
	var last error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w by %s: %s", ErrLoginRejected, host, resp.Status)
		default:
			return fmt.Errorf("checking login at %s: GET /v2/: %s", host, resp.Status)
		}
	}
	return explain(host, last)
}

// rejected classifies an error of the challenge step: a 401 or 403 from
// the token service is a refused login, anything else says why the
// registry could not be asked.
func rejected(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w by %s: %w", ErrLoginRejected, host, err)
	}
	return explain(host, err)
}
