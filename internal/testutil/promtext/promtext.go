// Package promtext reads a Prometheus /metrics page in tests: it parses the
// text exposition format strictly (with prometheus/common's parser, so a
// page that a Prometheus server would reject fails the test) and looks up
// single samples.
package promtext

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Parse parses body as the Prometheus text format or fails the test.
func Parse(t testing.TB, body string) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, body)
	}
	return fams
}

// Value returns the sample of family name whose labels are exactly labels
// (name, value pairs in label-name order, as the exposition sorts them):
// a counter's or gauge's value, or a histogram's sample count.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.Metric {
		var got []string
		for _, l := range m.Label {
			got = append(got, l.GetName(), l.GetValue())
		}
		if !slices.Equal(got, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// Want fails the test unless the sample exists and equals want.
func (f Families) Want(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := f.Value(name, labels...)
	switch {
	case !ok:
		t.Errorf("%s%v: missing", name, labels)
	case got != want:
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}
