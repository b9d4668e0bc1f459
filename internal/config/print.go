package config

import (
	"fmt"
	"io"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/registry"
)

// envRefsOnlyRE matches a value made only of ${NAME} references: printing
// it as written shows where a secret comes from, not the secret.
var envRefsOnlyRE = regexp.MustCompile(`^(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+$`)

// redactedNode is a secret's printed value.
func redactedNode(s str) *yaml.Node {
	if !s.set {
		return nil
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redacted}
}

// isRedacted reports whether a secret's value is what Print writes for
// one: loading it back must fail, not log in with the word REDACTED.
func isRedacted(s str) bool { return s.set && s.val == redacted }

// PrintOptions tune Print.
type PrintOptions struct {
	// AuthNote, when set, says where the credentials of a registry
	// location that names none come from ("docker config.json, else
	// anonymous"); it is printed as a comment.
	AuthNote func(Location) string
}

// Print writes the configuration as YAML that loads back to the same
// tasks: every key the file set, in the file's order and its own words
// (aliases and merge keys expanded), made by the walk that loaded it, so no
// key can be left out. Secrets (password, auth) print as REDACTED unless
// written as ${NAME} references, and loading REDACTED fails saying so.
// Facts the loader resolved (where a task starts, where credentials come
// from) are comments, not keys.
func (c *Config) Print(w io.Writer, o PrintOptions) error {
	if c.printed == nil {
		return fmt.Errorf("%s: configuration was not loaded from a file", c.File)
	}
	root := copyNode(c.printed)
	root.HeadComment = c.File + ", as loaded; secrets redacted"
	if tasks := valueOf(root, "tasks"); tasks != nil && len(tasks.Content) == len(c.Tasks) {
		for i, t := range c.Tasks {
			tn := tasks.Content[i]
			for _, side := range []struct {
				key string
				loc Location
			}{{"source", t.Source}, {"target", t.Target}} {
				if reg := valueOf(valueOf(tn, side.key), "registry"); reg != nil {
					reg.LineComment = authNote(side.loc, o.AuthNote)
				}
			}
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return err
	}
	return enc.Close()
}

// authNote says where a location's credentials come from.
func authNote(l Location, note func(Location) string) string {
	switch {
	case !(registry.Endpoint{Registry: l.Registry}).Kind().Network():
		return "" // a directory: nothing to log in to
	case l.AuthNone:
		return "auth: none (anonymous)"
	case l.Auth != nil:
		return "auth: credentials of " + l.Auth.Username
	case note != nil:
		return "auth: " + note(l)
	}
	return "auth: docker config.json, else anonymous"
}

// valueOf returns the value of key in mapping n, nil when n is no mapping
// or has no such key.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// copyNode copies a printed tree, so that Print's comments never change
// the Config.
func copyNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = copyNode(k)
	}
	return &c
}
