// Command regmirror keeps container images mirrored from upstream
// registries into private ones. Everything lives in internal/; this file
// only wires signals to the root command and errors to exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/regmirror/regmirror/internal/cli"
)

func main() {
	// The first SIGINT or SIGTERM cancels the run with the signal as the
	// cause (the exit code says which); a second one ends the process at
	// once, the default action, for a user who will not wait.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Stop(sigs)
		cancel(&cli.Interrupted{Signal: s})
	}()
	err := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(cli.ExitCode(err))
}
