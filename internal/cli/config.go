package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

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
		Short: "Load, validate and print the resolved configuration, secrets redacted",
		Long: `print loads a configuration file exactly as sync does (environment variables
expanded, password files read, auth decoded, defaults filled in), validates
it, and prints the result as YAML. Passwords, tokens and dregsy auth strings
are printed as REDACTED. Exit code 2 when the file does not load.`,
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
			fmt.Fprintf(g.stdout, "# %s, resolved; secrets redacted\n", cfg.File)
			enc := yaml.NewEncoder(g.stdout)
			enc.SetIndent(2)
			if err := enc.Encode(printable(cfg)); err != nil {
				return err
			}
			return enc.Close()
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	return cmd
}

// The printed form: what each key resolved to, in the file's own words.
// Secrets go through config.Secret, which prints as REDACTED.
type (
	printConfig struct {
		Relay     string      `yaml:"relay,omitempty"`
		Watch     bool        `yaml:"watch,omitempty"`
		CertsDir  string      `yaml:"certs-dir,omitempty"`
		Lister    printLister `yaml:"lister"`
		Transfers int         `yaml:"transfers,omitempty"`
		Retry     printRetry  `yaml:"retry"`
		Tasks     []printTask `yaml:"tasks"`
	}
	printRetry struct {
		Attempts        int    `yaml:"attempts"`
		Wait            string `yaml:"wait"`
		RequestAttempts int    `yaml:"request-attempts"`
		RequestWait     string `yaml:"request-wait"`
		IdleTimeout     string `yaml:"idle-timeout"`
		MinRate         int64  `yaml:"min-rate"`
		MinRateWindow   string `yaml:"min-rate-window"`
		ImageTimeout    string `yaml:"image-timeout"`
	}
	printLister struct {
		MaxItems      int    `yaml:"maxItems"`
		CacheDuration string `yaml:"cacheDuration"`
		Type          string `yaml:"type,omitempty"`
		Search        string `yaml:"search,omitempty"`
	}
	printTask struct {
		Name     string         `yaml:"name"`
		Line     int            `yaml:"line"`
		Interval string         `yaml:"interval,omitempty"`
		Schedule string         `yaml:"schedule,omitempty"`
		Verbose  bool           `yaml:"verbose,omitempty"`
		Source   printLocation  `yaml:"source"`
		Target   printLocation  `yaml:"target"`
		Mappings []printMapping `yaml:"mappings"`
	}
	printLocation struct {
		Registry      string        `yaml:"registry"`
		PlainHTTP     bool          `yaml:"plain-http,omitempty"`
		SkipTLSVerify bool          `yaml:"skip-tls-verify,omitempty"`
		CAFile        string        `yaml:"ca-file,omitempty"`
		CertsDir      string        `yaml:"certs-dir,omitempty"`
		Auth          string        `yaml:"auth"`
		Username      string        `yaml:"username,omitempty"`
		Password      config.Secret `yaml:"password,omitempty"`
		AuthRefresh   string        `yaml:"auth-refresh,omitempty"`
		RateLimit     *printRate    `yaml:"rate-limit,omitempty"`
		Lister        *printLister  `yaml:"lister,omitempty"`
	}
	printRate struct {
		MinRemaining int    `yaml:"min-remaining"`
		Wait         string `yaml:"wait"`
	}
	printMapping struct {
		From      string   `yaml:"from"`
		To        string   `yaml:"to"`
		Tags      []string `yaml:"tags,omitempty"`
		Platform  string   `yaml:"platform,omitempty"`
		Platforms []string `yaml:"platforms,omitempty"`
		Missing   string   `yaml:"platforms-missing,omitempty"`
		Verify    *struct {
			Keys []string `yaml:"keys"`
		} `yaml:"verify,omitempty"`
		Referrers bool `yaml:"referrers,omitempty"`
		Prune     bool `yaml:"prune,omitempty"`
	}
)

func printable(c *config.Config) printConfig {
	out := printConfig{Relay: c.Relay, Watch: c.Watch, CertsDir: c.CertsDir, Lister: printableLister(c.Lister), Transfers: c.Transfers,
		Retry: printRetry{Attempts: c.Retry.Attempts, Wait: c.Retry.Wait.String(), RequestAttempts: c.Retry.RequestAttempts,
			RequestWait: c.Retry.RequestWait.String(), IdleTimeout: c.Retry.IdleTimeout.String(),
			MinRate: c.Retry.MinRate, MinRateWindow: c.Retry.MinRateWindow.String(), ImageTimeout: c.Retry.ImageTimeout.String()}}
	for _, t := range c.Tasks {
		pt := printTask{Name: t.Name, Line: t.Line, Interval: dur(t.Interval), Schedule: t.Schedule, Verbose: t.Verbose,
			Source: printableLocation(t.Source), Target: printableLocation(t.Target)}
		for _, m := range t.Mappings {
			pm := printMapping{From: m.From, To: m.To, Platform: m.Platform, Platforms: m.Platforms, Missing: m.PlatformsMissing, Referrers: m.Referrers, Prune: m.Prune}
			if m.Tags != nil {
				pm.Tags = m.Tags.Specs()
			}
			if m.Verify != nil {
				pm.Verify = &struct {
					Keys []string `yaml:"keys"`
				}{}
				for _, k := range m.Verify.Keys {
					pm.Verify.Keys = append(pm.Verify.Keys, k.File)
				}
			}
			pt.Mappings = append(pt.Mappings, pm)
		}
		out.Tasks = append(out.Tasks, pt)
	}
	return out
}

func printableLister(l config.Lister) printLister {
	return printLister{MaxItems: l.MaxItems, CacheDuration: l.CacheDuration.String(), Type: l.Type, Search: l.Search}
}

func printableLocation(l config.Location) printLocation {
	p := printLocation{Registry: l.Registry, PlainHTTP: l.PlainHTTP, SkipTLSVerify: l.SkipTLSVerify,
		CAFile: l.CAFile, CertsDir: l.CertsDir, AuthRefresh: dur(l.AuthRefresh)}
	switch {
	case l.AuthNone:
		p.Auth = "none"
	case l.Auth != nil:
		p.Auth = "credentials"
		p.Username, p.Password = l.Auth.Username, l.Auth.Password
	default:
		p.Auth = "docker config.json, else anonymous"
		switch auth.CloudHelper(l.Registry) {
		case "ecr":
			p.Auth = "docker config.json, else the ECR credential helper (AWS SDK chain), else anonymous"
		case "google":
			p.Auth = "docker config.json, else Google application-default credentials, else anonymous"
		}
	}
	if l.RateLimit.MinRemaining > 0 {
		p.RateLimit = &printRate{MinRemaining: l.RateLimit.MinRemaining, Wait: l.RateLimit.Wait.String()}
	}
	if l.Lister != nil {
		pl := printableLister(*l.Lister)
		p.Lister = &pl
	}
	return p
}

func dur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
