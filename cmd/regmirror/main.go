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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err))
}
