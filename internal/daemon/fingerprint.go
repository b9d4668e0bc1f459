package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/schedule"
)

// Fingerprint identifies everything about a task that a reload may change:
// an equal fingerprint keeps the task's schedule (and lets a run in flight
// finish), a different one reschedules it. It is a hash over the fields
// that change what a run does, named one by one: endpoints by their
// registry.Endpoint.Key (settings and credentials, the password as a hash),
// the lister, and per mapping from, to, tag filters, platform, referrers
// and prune; and the schedule. Where a mapping was written (Origin) is
// left out: a comment added above a mapping must not reschedule it.
//
// A field added to engine.Task or engine.Mapping must be added here when a
// change to it should take effect on reload.
func Fingerprint(t engine.Task, spec schedule.Spec) string {
	h := sha256.New()
	field(h, "name", t.Name)
	field(h, "source", t.Source.Key())
	field(h, "target", t.Target.Key())
	field(h, "pull-only", strconv.FormatBool(t.PullOnly))
	field(h, "lister", strconv.Itoa(t.Lister.MaxItems), t.Lister.CacheDuration.String(), t.Lister.Type)
	for _, m := range t.Mappings {
		field(h, "mapping", m.From, m.To)
		if m.Tags != nil {
			field(h, "tags", m.Tags.Specs()...)
		}
		if m.Platform != nil {
			field(h, "platform", m.Platform.String())
		}
		field(h, "referrers", strconv.FormatBool(m.Referrers))
		field(h, "prune", strconv.FormatBool(m.Prune))
	}
	field(h, "schedule", spec.String())
	return hex.EncodeToString(h.Sum(nil))
}

// field writes a name and its values length-prefixed, so that no two
// different tasks hash the same bytes ("a","bc" vs "ab","c").
func field(h hash.Hash, name string, values ...string) {
	fmt.Fprintf(h, "%d:%s:%d", len(name), name, len(values))
	for _, v := range values {
		fmt.Fprintf(h, ":%d:%s", len(v), v)
	}
	h.Write([]byte{'\n'})
}
