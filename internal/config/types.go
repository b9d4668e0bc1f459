// Package config owns regmirror's configuration file: a strict superset of
// dregsy's YAML. It decodes strictly (unknown keys are errors naming
// file:line), validates everything that can be checked without a network
// and hands over compiled values: tag filters (*filter.Tags), from/to
// pairs (*filter.RepoMap), platforms (*v1.Platform) and schedules
// (*schedule.Cron), so nothing downstream parses a string again and a bad
// file fails before anything is copied. It also prints a configuration
// back (Config.Print), from the same walk over its schema that loads it,
// and reads the insecure registries of docker's and podman's files.
//
// It does no network I/O and knows nothing about the engine, the daemon
// or the command line. It may import filter, schedule, verify, the root
// registry package (registry.ParseLocation, the location grammar) and
// registry/transport (progress-deadline defaults).
package config

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/schedule"
)

// Config is a loaded and validated configuration file.
type Config struct {
	// File is the name the configuration was loaded from (for messages).
	File string

	// Relay is dregsy's relay ("skopeo" or "docker"; "" when the file
	// sets none, dregsy's default being docker). regmirror always copies
	// natively; the value is kept only to say so once.
	Relay string
	// Watch asks the daemon to reload the file when it changes.
	Watch bool
	// CertsDir is skopeo.certs-dir: the default CA directory (docker
	// certs.d layout) for every registry that names none of its own.
	CertsDir string
	// Lister is the top-level lister configuration (dregsy's `lister:`).
	Lister Lister
	// Transfers caps blob transfers in flight across all tasks
	// (`transfers:`, ours); 0 means the built-in default.
	Transfers int
	// Retry is how hard a transient failure is retried (`retry:`, ours),
	// defaults filled in.
	Retry Retry

	Tasks []Task

	// printed is the file as Print writes it (see loader.fields).
	printed *yaml.Node
}

// Retry is the top-level `retry:` section: how often and how patiently
// transient failures (5xx, 429, cut or stalled connections, expired upload
// sessions) are retried. Permanent ones (400, 401, 403, 404, a digest
// mismatch) never are. Defaults are filled in (DefaultRetry).
type Retry struct {
	// Attempts is how many times one image copy is tried; Wait is the
	// first pause between tries, doubled each time.
	Attempts int
	Wait     time.Duration
	// RequestAttempts is how many times one HTTP request is sent;
	// RequestWait the first pause, tripled each time.
	RequestAttempts int
	RequestWait     time.Duration
	// IdleTimeout fails a response that delivers no byte for this long,
	// so that it can be retried.
	IdleTimeout time.Duration
	// MinRate (bytes per second, default 1 KiB/s) and MinRateWindow
	// (default 1m) are every transfer's progress deadline: a response
	// body slower than MinRate over MinRateWindow of reading fails.
	// MinRate 0 turns it off.
	MinRate       int64
	MinRateWindow time.Duration
	// ImageTimeout bounds one image's copy, retries included (default
	// 1h).
	ImageTimeout time.Duration
}

// DefaultRetry is what an absent `retry:` section means.
var DefaultRetry = Retry{Attempts: 3, Wait: 2 * time.Second, RequestAttempts: 4, RequestWait: time.Second, IdleTimeout: 2 * time.Minute,
	MinRate: transport.DefaultMinRate, MinRateWindow: transport.DefaultMinRateWindow, ImageTimeout: time.Hour}

// Lister mirrors dregsy's repository lister settings. Lister settings only
// matter for mappings whose from is a regex: (repository discovery).
type Lister struct {
	// MaxItems caps the repositories listed; dregsy: -1 means no limit.
	// Default 100.
	MaxItems int
	// CacheDuration is how long a repository list is reused; dregsy:
	// negative means no caching. Default 1h.
	CacheDuration time.Duration
	// Type is a location lister's type: "" (chosen from the registry),
	// "catalog", "dockerhub", "index", "ecr" or "gcr". Always "" at the
	// top level.
	Type string
	// Search is the search term of an "index" lister.
	Search string
}

// Task is one dregsy task: a source, a target and mappings between them.
type Task struct {
	Name string
	// Interval between runs in daemon mode; 0 means one-off.
	Interval time.Duration
	// Schedule is the parsed cron expression of `schedule:` (ours); nil
	// when the task has none. Never set together with a non-zero
	// Interval.
	Schedule *schedule.Cron
	Verbose  bool

	Source   Location
	Target   Location
	Mappings []Mapping

	// Lister is the lister that applies to this task's regex: mappings:
	// the source's own `lister:` when it has one (its unset keys taken
	// from the top level), else the top-level one.
	Lister Lister

	// File is the configuration file the task was read from, and Line
	// where the task starts in it (for messages).
	File string
	Line int

	verify *Verify // the task's verify:, given to its mappings
}

// Spec is when the task runs in daemon mode.
func (t Task) Spec() schedule.Spec { return schedule.Spec{Interval: t.Interval, Cron: t.Schedule} }

// Location is a registry end of a task.
type Location struct {
	// Registry is "host[:port]" (any http:// or https:// prefix removed) or
	// "oci:PATH" for an OCI image layout directory.
	Registry string
	// PlainHTTP is true when the registry was written with an http://
	// prefix: plain HTTP is allowed for this registry.
	PlainHTTP bool
	// SkipTLSVerify means what it means for skopeo and dregsy: no
	// certificate verification, and falling back to plain HTTP is allowed.
	SkipTLSVerify bool
	// CAFile is a PEM bundle of extra CAs for this registry.
	CAFile string
	// CertsDir is a docker certs.d style directory:
	// <dir>/<host[:port]>/*.crt, client.cert, client.key. When the
	// location names none, it is Config.CertsDir (skopeo.certs-dir).
	CertsDir string

	// Auth holds explicit credentials. It is nil when the config gives
	// none, in which case docker's config.json and then anonymous access
	// are used.
	Auth *Credentials
	// AuthNone is dregsy's `auth: none`: always anonymous.
	AuthNone bool
	// AuthRefresh is dregsy's ECR token refresh interval.
	AuthRefresh time.Duration

	// RateLimit holds pulls back while the registry's remaining pull
	// allowance (ratelimit-remaining) is below MinRemaining (ours).
	RateLimit RateLimit

	// Lister overrides the top-level lister for this location, if set.
	Lister *Lister

	// MaxConcurrentRequests caps the HTTP requests in flight to this
	// registry at once (`max-concurrent-requests`, ours); 0: no cap.
	MaxConcurrentRequests int

	Line int
}

// RateLimit is a location's `rate-limit:` setting.
type RateLimit struct {
	// MinRemaining: no pull starts while the last ratelimit-remaining
	// reading is below it (0: off).
	MinRemaining int
	// Wait between re-checks (with a HEAD, which costs no pull).
	Wait time.Duration
}

// Credentials are explicit registry credentials. Password is a Secret so it
// cannot leak through fmt, slog or JSON.
type Credentials struct {
	Username string
	Password Secret
}

// Mapping maps a source repository to a target repository with a tag
// selection.
type Mapping struct {
	// From is the source repository path without a leading "/" (for
	// Docker Hub a name without namespace has "library/" prepended by the
	// resolver, not here). dregsy's "regex:RE" form is kept verbatim,
	// prefix included, with RE checked to compile; repositories are then
	// discovered with the source's lister and matched against RE.
	From string
	// To is the target repository path without a leading "/"; it
	// defaults to From. dregsy's "regex:RE,REPLACEMENT" form is kept
	// verbatim (RE checked to compile): the target path is the source
	// path with RE replaced by REPLACEMENT (regexp.ReplaceAllString).
	// When From is a regex: a plain To is a prefix (dregsy: To + path)
	// and an empty To keeps each discovered repository's own path.
	To string
	// Repos is From and To compiled: which source repositories the
	// mapping names and where each goes.
	Repos *filter.RepoMap
	// Tags is the compiled tag selection; it is never nil (an empty
	// `tags:` selects every tag).
	Tags *filter.Tags
	// Platform, when set, copies only that platform's image of a
	// multi-arch tag (`platform: os/arch[/variant]`); nil copies the whole
	// index byte for byte (no platform, or "all").
	Platform *v1.Platform
	// Platforms, when set, copies an index holding only these platforms'
	// images ("os/arch[/variant]", in the order written; ours). Exclusive
	// with Platform; the task's `platforms:` when the mapping sets
	// neither.
	Platforms []string
	// PlatformsMissing is what to do when a listed platform is not in the
	// source's index: "fail" (the image fails; the default) or "skip"
	// (copy the platforms there are).
	PlatformsMissing string
	// Verify, when set, copies only images signed with one of its keys
	// (cosign, key-based; ours). The task's `verify:` when the mapping
	// has none.
	Verify *Verify
	// Referrers also copies what is attached to each copied image:
	// OCI referrers (signatures, attestations, SBOMs with a subject) and
	// cosign's sha256-<hex>.sig/.att/.sbom tags (ours).
	Referrers bool
	// Prune deletes, after a sync of this mapping in which nothing
	// failed, the target tags that the mapping's filter owns and that the
	// source no longer has (ours).
	Prune bool

	Line int

	missingLine  int    // where platforms-missing was written, for messages
	platformText string // platform: as written ("all" included), "" when not set
}

// Secret is a string that never prints itself.
type Secret string

const redacted = "REDACTED"

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer so %#v does not leak either.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps JSON, YAML and slog from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret value. Only the registry auth code calls it.
func (s Secret) Reveal() string { return string(s) }
