package cli

import (
	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/registry/auth"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Short:   "Inspect a configuration file",
		Example: `  regmirror config print --config dregsy.yaml`,
	}
	cmd.AddCommand(newConfigPrintCmd(g))
	return cmd
}

func newConfigPrintCmd(g *globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "print --config FILE",
		Short: "Load, validate and print the configuration, secrets redacted",
		Long: `print loads a configuration file exactly as sync does (password files read,
auth decoded, every value checked) and prints it back as YAML: every key the
file sets, in its order, with aliases and merge keys expanded. The output
loads again. What the loader worked out is written as comments: where each
task starts, and where each registry's credentials come from.

Literal passwords and dregsy auth strings are printed as REDACTED (a
password written as a \${VARIABLE} reference is printed as written); loading
a REDACTED value fails, naming it. Exit code 2 when the file does not load.`,
		Example: `  regmirror config print --config dregsy.yaml`,
		Args:    positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger("text")
			if err != nil {
				return err
			}
			cfg, err := loadConfig(cfgPath, log)
			if err != nil {
				return err
			}
			return cfg.Print(g.stdout, config.PrintOptions{AuthNote: authNote})
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	return cmd
}

// authNote says where the credentials of a location that names none come
// from, per host: the cloud keychains are the registry's to know.
func authNote(l config.Location) string {
	switch auth.CloudHelper(l.Registry) {
	case "ecr":
		return "docker config.json, else the ECR credential helper (AWS SDK chain), else anonymous"
	case "google":
		return "docker config.json, else Google application-default credentials, else anonymous"
	}
	return "docker config.json, else anonymous"
}
