package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/schedule"
)

// This file walks the document by its schema. Each function reads one kind
// of mapping, checks what can be checked on its own and resolves defaults;
// checks that need several keys at once come after the walk of a mapping.

// config reads the top level.
func (l *loader) config(root *yaml.Node) *Config {
	cfg := &Config{File: l.file, Retry: DefaultRetry}
	lister := Lister{MaxItems: defaultListerItems, CacheDuration: defaultListerCache}
	var relay str
	var tasksKey, tasksVal *yaml.Node

	const top = topLevel
	ignore := func(what string) field {
		return func(key, val *yaml.Node) { l.str(key, val, what) }
	}
	printed := l.fields(root, top, map[string]field{
		"relay": func(key, val *yaml.Node) { relay = l.str(key, val, top) },
		"watch": func(key, val *yaml.Node) { cfg.Watch = l.boolean(key, val, top) },
		"skopeo": func(key, val *yaml.Node) {
			const what = "skopeo"
			l.section(key, val, what, map[string]field{
				"binary":    ignore(what), // regmirror copies natively
				"certs-dir": func(key, val *yaml.Node) { cfg.CertsDir = l.str(key, val, what).val },
			})
		},
		"docker": func(key, val *yaml.Node) {
			const what = "docker"
			l.section(key, val, what, map[string]field{
				"dockerhost":  ignore(what),
				"api-version": ignore(what),
			})
		},
		// dregsy's deprecated top-level docker settings.
		"dockerhost":  ignore(top),
		"api-version": ignore(top),
		"lister": func(key, val *yaml.Node) {
			const what = "lister"
			l.section(key, val, what, l.listerFields(&lister, what))
		},
		"transfers": func(key, val *yaml.Node) {
			if n, ok := l.integer(key, val, top); ok {
				if n < 1 {
					l.errorf(key.Line, "transfers must be at least 1, not %d", n)
				}
				cfg.Transfers = n
			}
		},
		"retry": func(key, val *yaml.Node) { l.section(key, val, "retry", l.retryFields(&cfg.Retry)) },
		// Tasks are read last: they inherit skopeo.certs-dir and lister.
		"tasks": func(key, val *yaml.Node) { tasksKey, tasksVal = key, val; l.printLater() },
	})

	if relay.set && relay.val != "" {
		switch relay.val {
		case "docker", "skopeo":
			cfg.Relay = relay.val
		default:
			l.errorf(relay.line, "relay %s: must be \"skopeo\" or \"docker\"", quote(relay.val))
		}
	}
	cfg.Lister = lister
	cfg.printed = printed

	if tasksKey == nil {
		l.errorf(root.Line, "no tasks: \"tasks\" must list at least one task")
		return cfg
	}
	seq := l.resolve(tasksVal)
	switch {
	case isNull(seq) || (seq.Kind == yaml.SequenceNode && len(seq.Content) == 0):
		l.errorf(tasksKey.Line, "no tasks: \"tasks\" must list at least one task")
		return cfg
	case seq.Kind != yaml.SequenceNode:
		l.errorf(seq.Line, "\"tasks\" must be a list of tasks, not %s", kindName(seq))
		return cfg
	}
	names := map[string]int{} // task name -> line
	printedTasks := &yaml.Node{Kind: yaml.SequenceNode}
	defer func() { setPrinted(printed, "tasks", printedTasks); cfg.printed = printed }()
	for i, item := range seq.Content {
		t, pt, ok := l.task(item, i, cfg)
		if t.Name != "" {
			if first, dup := names[t.Name]; dup {
				l.errorf(t.Line, "duplicate task name %s (first at line %d)", quote(t.Name), first)
				continue
			}
			names[t.Name] = t.Line
		}
		if ok {
			cfg.Tasks = append(cfg.Tasks, t)
			printedTasks.Content = append(printedTasks.Content, pt)
		}
	}
	return cfg
}

// section reads a nested mapping (skopeo, docker, lister). A null value is
// an empty section.
func (l *loader) section(key, val *yaml.Node, what string, known map[string]field) bool {
	v := l.resolve(val)
	if isNull(v) {
		return false
	}
	if v.Kind != yaml.MappingNode {
		l.errorf(v.Line, "%q must be a mapping, not %s", key.Value, kindName(v))
		return false
	}
	l.printAs(l.fields(v, what, known))
	return true
}

// retryFields are the keys of `retry:`. Every count is at least 1 and every
// wait positive: "no retries" is attempts: 1.
func (l *loader) retryFields(r *Retry) map[string]field {
	const what = "retry"
	count := func(dst *int) field {
		return func(key, val *yaml.Node) {
			if n, ok := l.integer(key, val, what); ok {
				if n < 1 {
					l.errorf(key.Line, "retry: %s must be at least 1, not %d", key.Value, n)
				}
				*dst = n
			}
		}
	}
	wait := func(dst *time.Duration) field {
		return func(key, val *yaml.Node) {
			if d, ok := l.duration(key, val, what); ok {
				if d <= 0 {
					l.errorf(key.Line, "retry: %s must be positive, not %s", key.Value, d)
				}
				*dst = d
			}
		}
	}
	return map[string]field{
		"attempts":         count(&r.Attempts),
		"wait":             wait(&r.Wait),
		"request-attempts": count(&r.RequestAttempts),
		"request-wait":     wait(&r.RequestWait),
		"idle-timeout":     wait(&r.IdleTimeout),
		"min-rate":         func(key, val *yaml.Node) { r.MinRate = l.rate(key, val, what) },
		"min-rate-window":  wait(&r.MinRateWindow),
		"image-timeout":    wait(&r.ImageTimeout),
	}
}

// listerFields are the keys of a lister, top-level or per location.
func (l *loader) listerFields(dst *Lister, what string) map[string]field {
	return map[string]field{
		// dregsy: -1 means no limit.
		"maxItems": func(key, val *yaml.Node) {
			if n, ok := l.integer(key, val, what); ok {
				dst.MaxItems = n
			}
		},
		// dregsy: negative means no caching.
		"cacheDuration": func(key, val *yaml.Node) {
			if d, ok := l.duration(key, val, what); ok {
				dst.CacheDuration = d
			}
		},
	}
}

// task reads tasks[i].
func (l *loader) task(item *yaml.Node, i int, cfg *Config) (Task, *yaml.Node, bool) {
	n := l.resolve(item)
	if n == nil {
		return Task{}, nil, false
	}
	t := Task{File: l.file, Line: n.Line}
	if n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "tasks[%d] must be a mapping with name, source, target and mappings, not %s", i, kindName(n))
		return t, nil, false
	}
	nerrs := len(l.errs)

	const what = "task"
	var name, sched str
	var sourceKey, sourceVal, targetKey, targetVal, mappingsKey, mappingsVal *yaml.Node
	var platforms []string
	var platformsMissing string
	missingLine := 0
	printed := l.fields(n, what, map[string]field{
		"name":     func(key, val *yaml.Node) { name = l.str(key, val, what) },
		"interval": func(key, val *yaml.Node) { t.Interval = l.interval(key, val) },
		"schedule": func(key, val *yaml.Node) { sched = l.str(key, val, what) },
		"verbose":  func(key, val *yaml.Node) { t.Verbose = l.boolean(key, val, what) },
		// Ours: defaults for the task's mappings.
		"platforms":         func(key, val *yaml.Node) { platforms = l.platforms(key, val) },
		"platforms-missing": func(key, val *yaml.Node) { platformsMissing, missingLine = l.platformsMissing(key, val), key.Line },
		"verify":            func(key, val *yaml.Node) { t.verify = l.verify(key, val) },
		// Locations and mappings are read after the task's own keys so
		// that their messages come in a stable order.
		"source":   func(key, val *yaml.Node) { sourceKey, sourceVal = key, val; l.printLater() },
		"target":   func(key, val *yaml.Node) { targetKey, targetVal = key, val; l.printLater() },
		"mappings": func(key, val *yaml.Node) { mappingsKey, mappingsVal = key, val; l.printLater() },
	})

	label := fmt.Sprintf("tasks[%d]", i)
	if name.set && name.val != "" {
		t.Name = name.val
		label = "task " + quote(t.Name)
	} else {
		l.errorf(t.Line, "%s has no name: \"name\" is required", label)
	}

	if sched.set {
		l.schedule(&t, sched)
	}

	if sourceKey == nil {
		l.errorf(t.Line, "%s has no source: \"source\" with a registry is required", label)
	} else {
		var pl *yaml.Node
		t.Source, pl = l.location(sourceKey, sourceVal, "source", cfg)
		setPrinted(printed, "source", pl)
	}
	t.Lister = cfg.Lister
	if t.Source.Lister != nil {
		t.Lister = *t.Source.Lister
	}
	if targetKey == nil {
		l.errorf(t.Line, "%s has no target: \"target\" with a registry is required", label)
	} else {
		var pl *yaml.Node
		t.Target, pl = l.location(targetKey, targetVal, "target", cfg)
		setPrinted(printed, "target", pl)
	}

	var pm *yaml.Node
	t.Mappings, pm = l.mappings(mappingsKey, mappingsVal, t.Line, label)
	setPrinted(printed, "mappings", pm)
	if platformsMissing != "" && len(platforms) == 0 {
		l.errorf(missingLine, "platforms-missing goes with platforms: set the task's platforms too, or move platforms-missing to the mappings that list platforms")
		platformsMissing = ""
	}
	l.mappingDefaults(&t, platforms, platformsMissing)
	// Where the task is written is a fact, not a key: a comment.
	printed.HeadComment = fmt.Sprintf("%s:%d", l.file, t.Line)
	return t, printed, len(l.errs) == nerrs && t.Name != ""
}

// interval reads a task interval: dregsy's whole seconds, or a Go duration
// string. 0 (or no interval) runs the task once.
func (l *loader) interval(key, val *yaml.Node) time.Duration {
	v := l.scalar(key, val, "task")
	if v == nil {
		return 0
	}
	var d time.Duration
	s := strings.TrimSpace(v.Value)
	var secs int64
	switch {
	case v.ShortTag() == "!!int" && v.Decode(&secs) == nil, isDigits(s) && parseInt(s, &secs):
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		if secs > maxSecs || secs < -maxSecs {
			l.errorf(v.Line, "interval %s is too large", quote(v.Value))
			return 0
		}
		d = time.Duration(secs) * time.Second
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil || v.ShortTag() != "!!str" {
			l.errorf(v.Line, "interval %s: want whole seconds (21600) or a duration (\"6h\")", quote(v.Value))
			return 0
		}
	}
	switch {
	case d < 0:
		l.errorf(v.Line, "interval %s: must not be negative (0 runs the task once)", quote(v.Value))
		return 0
	case d > 0 && d < minTaskInterval:
		l.errorf(v.Line, "interval %s: minimum task interval is 30 seconds", quote(v.Value))
		return 0
	}
	return d
}

// schedule checks a task's `schedule:` (ours): a cron expression, which
// cannot be combined with a non-zero interval.
func (l *loader) schedule(t *Task, s str) {
	expr := strings.TrimSpace(s.val)
	if expr == "" {
		l.errorf(s.line, "schedule is empty: want a cron expression such as \"0 3 * * *\"")
		return
	}
	c, err := schedule.ParseCron(expr)
	if err != nil {
		l.errorf(s.line, "schedule %s: bad cron expression: %v", quote(s.val), err)
		return
	}
	if t.Interval != 0 {
		l.errorf(s.line, "schedule and a non-zero interval cannot both be set: choose one")
		return
	}
	t.Schedule = &c
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseInt(s string, dst *int64) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// mappings reads a task's mappings; key is nil when the task has none.
func (l *loader) mappings(key, val *yaml.Node, taskLine int, label string) ([]Mapping, *yaml.Node) {
	if key == nil {
		l.errorf(taskLine, "%s has no mappings: \"mappings\" must list at least one mapping", label)
		return nil, nil
	}
	seq := l.resolve(val)
	switch {
	case seq == nil:
		return nil, nil
	case isNull(seq) || (seq.Kind == yaml.SequenceNode && len(seq.Content) == 0):
		l.errorf(key.Line, "%s has no mappings: \"mappings\" must list at least one mapping", label)
		return nil, nil
	case seq.Kind != yaml.SequenceNode:
		l.errorf(seq.Line, "\"mappings\" must be a list of mappings, not %s", kindName(seq))
		return nil, nil
	}
	var out []Mapping
	printed := &yaml.Node{Kind: yaml.SequenceNode}
	for i, item := range seq.Content {
		if m, pm, ok := l.mapping(item, i); ok {
			out = append(out, m)
			printed.Content = append(printed.Content, pm)
		}
	}
	return out, printed
}
