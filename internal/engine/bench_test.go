package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// These benchmarks are for profiling the copy path (go test -bench . -run
// '^$' -cpuprofile cpu.out ./internal/engine); bench/ measures wall time
// against skopeo. They are not run by `go test ./...`.

// BenchmarkCopyBlob copies one image with a 64 MiB generated layer into a
// new repository of a filesystem-backed registry: the streaming path.
func BenchmarkCopyBlob(b *testing.B) {
	const size = 64 << 20
	srcHost, _ := generatedSourceTB(b, size)
	dst := filesystemRegistry(b)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e := engine.New(engine.Options{})
		rep := e.Run(context.Background(), []engine.Task{{
			Name:     "big",
			Source:   registry.Endpoint{Registry: srcHost, PlainHTTP: true},
			Target:   plain(dst),
			Mappings: []engine.Mapping{{From: "big", To: fmt.Sprintf("mirror/big%d", i), Tags: tags(b, "1")}},
		}})
		if rep.Failed() != 0 {
			b.Fatalf("%+v", rep.Results)
		}
	}
}

// BenchmarkWarmMany re-syncs 100 tags the target already holds, as a fresh
// process would (new engine: no cached tokens or connections).
func BenchmarkWarmMany(b *testing.B) {
	src, dst := regtest.New(b), regtest.New(b)
	base := imagegen.Layer(1, 4096)
	for i := range 100 {
		imagegen.Push(b, src.Ref(fmt.Sprintf("many/app:v%03d", i)), imagegen.Image(uint64(i+10), 1, 512, base))
	}
	task := engine.Task{Name: "many", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "many/app", To: "many/app"}}}
	if rep := engine.New(engine.Options{}).Run(context.Background(), []engine.Task{task}); rep.Failed() != 0 {
		b.Fatalf("%+v", rep.Results)
	}
	b.ResetTimer()
	for b.Loop() {
		rep := engine.New(engine.Options{}).Run(context.Background(), []engine.Task{task})
		if rep.Failed() != 0 || rep.Summaries()[0].Skipped != 100 {
			b.Fatalf("%+v", rep.Summaries())
		}
	}
}

// BenchmarkColdMany copies 100 small tags sharing a base layer into a
// fresh target: per-image request overhead.
func BenchmarkColdMany(b *testing.B) {
	src := regtest.New(b)
	base := imagegen.Layer(1, 64<<10)
	for i := range 100 {
		imagegen.Push(b, src.Ref(fmt.Sprintf("many/app:v%03d", i)), imagegen.Image(uint64(i+10), 1, 4096, base))
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst := regtest.New(b)
		b.StartTimer()
		rep := engine.New(engine.Options{}).Run(context.Background(), []engine.Task{{Name: "many", Source: plain(src), Target: plain(dst),
			Mappings: []engine.Mapping{{From: "many/app", To: "many/app"}}}})
		if rep.Failed() != 0 || rep.Summaries()[0].Copied != 100 {
			b.Fatalf("%+v", rep.Summaries())
		}
		b.StopTimer()
		reportRequests(b, "target", dst)
		b.StartTimer()
	}
}

// reportRequests adds r's request counts per kind, per image, to the
// benchmark's output, then forgets them.
func reportRequests(b *testing.B, side string, r *regtest.Registry) {
	n := map[regtest.Kind]int{}
	for _, q := range r.Requests() {
		n[q.Kind]++
	}
	total := 0
	for k, v := range n {
		b.ReportMetric(float64(v)/100, side+"-"+string(k)+"/img")
		total += v
	}
	b.ReportMetric(float64(total)/100, side+"-reqs/img")
	r.Reset()
}
