package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// completionExamples are shown by `regmirror completion SHELL --help`.
var completionExamples = map[string]string{
	"completion": `  # bash, for the current shell, then for every new one
  source <(regmirror completion bash)
  regmirror completion bash > /etc/bash_completion.d/regmirror

  # zsh and fish
  regmirror completion zsh > "${fpath[1]}/_regmirror"
  regmirror completion fish > ~/.config/fish/completions/regmirror.fish`,
	"bash":       "  source <(regmirror completion bash)\n  regmirror completion bash > /etc/bash_completion.d/regmirror",
	"zsh":        "  regmirror completion zsh > \"${fpath[1]}/_regmirror\"",
	"fish":       "  regmirror completion fish > ~/.config/fish/completions/regmirror.fish",
	"powershell": "  regmirror completion powershell | Out-String | Invoke-Expression",
}

// finishTree is called once every command is added: it adds cobra's
// `completion` command (bash, zsh, fish, powershell) eagerly, so that it
// is part of the tree that --help, the docs and tests see, gives it
// examples, and teaches completion the values of the shared flags.
func finishTree(root *cobra.Command, g *globals) {
	// The completion commands bind their output when created.
	root.SetOut(g.stdout)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = completionExamples["completion"]
		for _, sh := range c.Commands() {
			sh.Example = completionExamples[sh.Name()]
			sh.Args = positional()
		}
	}
	fixed := func(vals ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp)
	}
	_ = root.RegisterFlagCompletionFunc("log-format", fixed("text", "json"))
	_ = root.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	// Usage shows "regmirror config [command]", not the group's own
	// run (which only prints help or rejects an unknown subcommand).
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	walk(root, func(c *cobra.Command) {
		// A command that only groups others (the root, config,
		// completion): an unknown subcommand is a usage error (exit 2).
		// cobra prints help and exits 0 for `completion tcsh`.
		if c.HasSubCommands() && !c.Runnable() {
			groupRun(c)
		}
		if c.Flags().Lookup("config") != nil {
			_ = c.MarkFlagFilename("config", "yaml", "yml")
		}
	})
}

// walk calls f for c and every command below it.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}
