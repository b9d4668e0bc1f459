package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// positional returns the argument check of a command that takes exactly
// the named arguments (none when names is empty). Every mistake is a usage
// error (exit 2) that names the missing or unexpected argument; cobra's
// own checks say "accepts 1 arg(s), received 0" and exit 1.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			missing := names[len(args):]
			word := "argument"
			if len(missing) > 1 {
				word = "arguments"
			}
			return usageErr("missing %s %s (usage: %s)", word, strings.Join(missing, " "), cmd.UseLine())
		case len(args) > len(names):
			extra := args[len(names):]
			return usageErr("unexpected argument %q (usage: %s)", extra[0], cmd.UseLine())
		}
		return nil
	}
}

// groupRun makes a command that only groups subcommands (the root, config,
// completion) print its help when called alone and fail as a usage error
// on an unknown subcommand. Cobra would print the help and exit 0 for
// `regmirror config printt`, and exit 1 for `regmirror synk`.
func groupRun(c *cobra.Command) {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		} else {
			msg += "; want one of " + strings.Join(names, ", ")
		}
		return usageErr("%s", msg)
	}
}

// newHelpCmd replaces cobra's help command, which prints "Unknown help
// topic" and exits 0 for `regmirror help synk`.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "Help about any command",
		Example: "  regmirror help sync",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return &UsageError{err}
			}
			if len(rest) > 0 && target.HasSubCommands() {
				return usageErr("unknown help topic %q", strings.Join(args, " "))
			}
			return target.Help()
		},
	}
}

// dregsyFlagHint catches Go-style single-dash long flags, dregsy's habit
// (`-config=dregsy.yaml`, `-run=task`). pflag reads `-config=x` as the
// shorthand -c with the value "onfig=x" and the run would fail on a file
// named "onfig=x"; the hint names the flag that works instead.
func dregsyFlagHint(root *cobra.Command, args []string) error {
	long := map[string]bool{}
	walk(root, func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
	})
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, hasValue := strings.Cut(a[1:], "=")
		want := name
		if name == "run" {
			want = "task" // dregsy's -run is our --task
		}
		if !long[want] {
			continue
		}
		// The value is not echoed: it may be a secret (-password=...).
		given, fix := "-"+name, "--"+want
		if hasValue {
			given, fix = given+"=...", fix+"=..."
		}
		return usageErr("%s: long flags take two dashes here (one dash starts single-letter flags); use %s", given, fix)
	}
	return nil
}
