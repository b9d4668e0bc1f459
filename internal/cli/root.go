// Package cli holds regmirror's commands, one file per command. Each turns
// flags into configuration and options, calls the engine, and reports. No
// copy logic lives here, and no daemon (internal/daemon): serve.go only
// reads flags.
//
// Every command gets its engine from one function, (*globals).assemble in
// engine.go: configuration, flags and logger in, the engine out (insecure
// registries, transfers:, retry:, the platform cache, --jobs and
// --transfers checked). It is the only caller of engine.New.
//
// cli may import every internal package but testutil; nothing imports it
// but cmd/regmirror.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/textsafe"
)

// Exit codes, the contract with scripts.
const (
	ExitOK     = 0 // everything selected is present and current
	ExitFailed = 1 // at least one image failed; the others were attempted
	ExitUsage  = 2 // usage or configuration error; nothing was copied
)

// ErrSyncFailed is returned when a run finished but some images failed.
var ErrSyncFailed = errors.New("some images failed")

// UsageError is a bad flag, argument or configuration.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErr(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// ExitCode maps an error returned by Execute to the process exit code.
func ExitCode(err error) int {
	var ue *UsageError
	var ce *config.Error
	var in *Interrupted
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &in):
		return in.code()
	case errors.As(err, &ue), errors.As(err, &ce):
		return ExitUsage
	default:
		return ExitFailed
	}
}

// globals are the flags every command shares.
type globals struct {
	logFormat string
	logLevel  string
	insecure  []string
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
}

// Execute runs the command line args and returns the error that decides the
// exit code. It prints the error itself.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	if err := dregsyFlagHint(root, args); err != nil {
		fmt.Fprintf(stderr, "regmirror: %v\n", err)
		return err
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if in := interruption(ctx); in != nil && err != nil {
		// The signal decides the exit code; the command's own error
		// ("context canceled") says nothing more.
		var said *Interrupted
		if !errors.As(err, &said) || !said.reported {
			fmt.Fprintf(stderr, "regmirror: %v\n", in)
		}
		return &Interrupted{Signal: in.Signal, reported: true}
	}
	if err != nil && !errors.Is(err, ErrSyncFailed) {
		// An error may quote a registry's answer or a file's content.
		fmt.Fprintf(stderr, "regmirror: %s\n", textsafe.EscapeLines(err.Error()))
		if ExitCode(err) == ExitUsage && cmd != nil && isFlagError(err) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return err
}

func isFlagError(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue) && !errorsAsConfig(err)
}

func errorsAsConfig(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "regmirror",
		Short: "Mirror container images between registries, pulling only what the target lacks",
		Long: `regmirror keeps container images mirrored from upstream registries into
private ones. It reads dregsy configuration files unchanged, asks the target
and the source with HEAD requests first, and copies only what differs.`,
		Example: `  regmirror sync --config dregsy.yaml
  regmirror sync --help`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	root.SetHelpCommand(newHelpCmd())
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", envOr("LOG_FORMAT", ""), "log format: text or json (default text on a terminal or for one-shot commands; env LOG_FORMAT)")
	pf.StringVar(&g.logLevel, "log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn or error (env LOG_LEVEL)")
	root.AddCommand(newSyncCmd(g), newServeCmd(g), newPlanCmd(g), newCheckCmd(g), newVersionCmd(g), newConfigCmd(g))
	// Image lists and credentials.
	root.AddCommand(newMirrorListCmd(g), newLoginCmd(g), newLogoutCmd(g))
	pf.StringArrayVar(&g.insecure, "insecure-registry", nil, "allow plain HTTP and unverified TLS for this registry HOST[:PORT] only (repeatable; /etc/docker/daemon.json insecure-registries and /etc/containers/registries.conf insecure = true count too)")
	// Air-gap bundles.
	root.AddCommand(newExportCmd(g), newImportCmd(g), newVerifyCmd(g))
	// Last: completion and flag completions need the whole tree.
	finishTree(root, g)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// logger builds the slog logger the flags ask for. defFormat applies when
// neither --log-format nor LOG_FORMAT is set.
func (g *globals) logger(defFormat string) (*slog.Logger, error) {
	return g.loggerTo(g.stderr, defFormat)
}

// loggerTo is logger writing to w (a progress display's writer, which keeps
// its status line below the log lines).
func (g *globals) loggerTo(w io.Writer, defFormat string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug", "trace":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal", "panic":
		lvl = slog.LevelError
	default:
		return nil, usageErr("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	format := strings.ToLower(g.logFormat)
	if format == "" {
		format = defFormat
	}
	// The inner handler takes debug records: taskLevel drops those below
	// lvl unless they belong to a "verbose: true" task.
	// textAttr and jsonAttr shape every value for its reader.
	switch format {
	case "text":
		opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: textAttr}
		return slog.New(newTaskLevel(slog.NewTextHandler(w, opts), lvl)), nil
	case "json":
		opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: jsonAttr}
		return slog.New(newTaskLevel(slog.NewJSONHandler(w, opts), lvl)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", g.logFormat)
}

// insecureRegistries collects the registries marked insecure: the
// --insecure-registry flags, then docker's daemon.json and containers'
// registries.conf (paths overridable by REGMIRROR_DOCKER_DAEMON_JSON and
// REGMIRROR_REGISTRIES_CONF). A bad flag is a usage error; a system file
// that cannot be read belongs to docker or podman, so it is only a warning.
func (g *globals) insecureRegistries(log *slog.Logger) (*config.Insecure, error) {
	in := &config.Insecure{}
	for _, h := range g.insecure {
		if err := in.Add(h, "--insecure-registry"); err != nil {
			return nil, usageErr("--insecure-registry: %v", err)
		}
	}
	daemon, conf := config.SystemPaths()
	if err := in.LoadSystem(daemon, conf); err != nil {
		log.Warn("ignoring a system registry configuration file", "error", err)
	}
	return in, nil
}

// markInsecure lets an endpoint use plain HTTP or unverified TLS when its
// host was marked insecure; every other endpoint is left as it is.
func markInsecure(ep registry.Endpoint, in *config.Insecure, log *slog.Logger) registry.Endpoint {
	if !ep.Kind().Network() || ep.SkipTLSVerify {
		return ep
	}
	if origin, ok := in.Match(ep.Registry); ok {
		ep.SkipTLSVerify = true
		log.Debug("registry marked insecure", "registry", ep.Registry, "by", origin)
	}
	return ep
}

// markTasks applies the insecure marks to every task's endpoints.
func markTasks(tasks []engine.Task, in *config.Insecure, log *slog.Logger) {
	for i := range tasks {
		tasks[i].Source = markInsecure(tasks[i].Source, in, log)
		tasks[i].Target = markInsecure(tasks[i].Target, in, log)
	}
}
