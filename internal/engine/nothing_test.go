package engine_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// A mapping whose filters select nothing is not an error, but the warning
// names the mapping's file:line, so a reader finds which of several
// mappings of the same repository is wrong.
func TestMappingSelectingNothingNamesItsLine(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "team/app")
	var logs bytes.Buffer
	e := engine.New(engine.Options{Jobs: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registry: registry.Options{}})
	rep := e.Run(ctx(t), []engine.Task{{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "team/app", To: "a", Tags: tags(t, "regex: 1\\.0"), Origin: "c.yaml:7"},
		{From: "team/app", To: "b", Tags: tags(t, "regex: 9\\..*"), Origin: "c.yaml:9"},
	}}})
	if rep.Failed() != 0 || len(rep.Results) != 1 {
		t.Fatalf("results %+v, want one copy", rep.Results)
	}
	var warn string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "no tags selected") {
			warn = l
		}
	}
	if !strings.Contains(warn, "mapping=c.yaml:9") || strings.Contains(logs.String(), "c.yaml:7") {
		t.Errorf("want one warning naming c.yaml:9:\n%s", logs.String())
	}
}
