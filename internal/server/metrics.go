package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/regmirror/regmirror/internal/registry/transport"
)

// Metric names, documented in docs/daemon.md.
const (
	metricImages          = "regmirror_images_total"
	metricBytes           = "regmirror_bytes_copied_total"
	metricRunDuration     = "regmirror_run_duration_seconds"
	metricRuns            = "regmirror_runs_total"
	metricRunsSkipped     = "regmirror_runs_skipped_total"
	metricLastSuccess     = "regmirror_last_success_timestamp_seconds"
	metricReloadFailures  = "regmirror_config_reload_failures_total"
	metricReloadOK        = "regmirror_config_last_reload_successful"
	metricReloadOKTime    = "regmirror_config_last_reload_success_timestamp_seconds"
	metricRateRemaining   = "regmirror_ratelimit_remaining"
	metricRateLimit       = "regmirror_ratelimit_limit"
	metricPulls           = "regmirror_pulls_total"
	resultCopied          = "copied"
	resultSkipped         = "skipped"
	resultFailed          = "failed"
	runOK, runFailed      = "ok", "failed"
	runCancelled          = "cancelled"
	labelTask, labelReg   = "task", "registry"
	labelResult           = "result"
	durationBucketsStart  = 0.5
	durationBucketsFactor = 4
	durationBucketsCount  = 9 // 0.5s .. ~9h
)

type metrics struct {
	reg            *prometheus.Registry
	images         *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	runDuration    *prometheus.HistogramVec
	runs           *prometheus.CounterVec
	runsSkipped    *prometheus.CounterVec
	lastSuccess    *prometheus.GaugeVec
	reloadFailures prometheus.Counter
	reloadOK       prometheus.Gauge
	reloadOKTime   prometheus.Gauge
}

func newMetrics(rates func() map[string]transport.RateLimitReading, pulls func() map[string]int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricImages,
			Help: "Images handled, by task and result (copied, skipped: already current, failed)."}, []string{labelTask, labelResult}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricBytes,
			Help: "Bytes uploaded to targets (blobs and manifests), by task."}, []string{labelTask}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricRunDuration,
			Help:    "Duration of task runs.",
			Buckets: prometheus.ExponentialBuckets(durationBucketsStart, durationBucketsFactor, durationBucketsCount)}, []string{labelTask}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRuns,
			Help: "Task runs, by result (ok: every image current; failed: some image failed; cancelled: stopped by a reload or shutdown)."}, []string{labelTask, labelResult}),
		runsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRunsSkipped,
			Help: "Runs not started because the previous run of the task was still going."}, []string{labelTask}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricLastSuccess,
			Help: "Unix time at which the last run of the task in which every image was current ended."}, []string{labelTask}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: metricReloadFailures,
			Help: "Configuration reloads that failed (the last good configuration stays in force)."}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricReloadOK,
			Help: "1 when the last configuration load succeeded, 0 when it failed."}),
		reloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricReloadOKTime,
			Help: "Unix time of the last successful configuration load."}),
	}
	m.reg.MustRegister(m.images, m.bytes, m.runDuration, m.runs, m.runsSkipped, m.lastSuccess,
		m.reloadFailures, m.reloadOK, m.reloadOKTime,
		&registryCollector{rates: rates, pulls: pulls},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// addTask makes a task's series exist (at zero) as soon as it is
// configured, so that rate() and absent() work from the first scrape.
func (m *metrics) addTask(task string) {
	for _, r := range []string{resultCopied, resultSkipped, resultFailed} {
		m.images.WithLabelValues(task, r)
	}
	for _, r := range []string{runOK, runFailed, runCancelled} {
		m.runs.WithLabelValues(task, r)
	}
	m.bytes.WithLabelValues(task)
	m.runsSkipped.WithLabelValues(task)
}

// removeTask drops the series of a task that left the configuration.
func (m *metrics) removeTask(task string) {
	l := prometheus.Labels{labelTask: task}
	m.images.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.runDuration.DeletePartialMatch(l)
	m.runs.DeletePartialMatch(l)
	m.runsSkipped.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
}

// registryCollector reads the registries' rate-limit readings and pull
// counts at scrape time from the engine's network manners.
type registryCollector struct {
	rates func() map[string]transport.RateLimitReading
	pulls func() map[string]int
}

var (
	descRemaining = prometheus.NewDesc(metricRateRemaining,
		"Last ratelimit-remaining a registry sent (Docker Hub: pulls left in its window).", []string{labelReg}, nil)
	descLimit = prometheus.NewDesc(metricRateLimit,
		"Last ratelimit-limit a registry sent.", []string{labelReg}, nil)
	descPulls = prometheus.NewDesc(metricPulls,
		"Manifest GETs sent to a registry (what Docker Hub counts as pulls; HEADs and blobs are free).", []string{labelReg}, nil)
)

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRemaining
	ch <- descLimit
	ch <- descPulls
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	if c.rates != nil {
		for host, r := range c.rates() {
			ch <- prometheus.MustNewConstMetric(descRemaining, prometheus.GaugeValue, float64(r.Remaining), host)
			if r.Limit > 0 {
				ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(r.Limit), host)
			}
		}
	}
	if c.pulls != nil {
		for host, n := range c.pulls() {
			ch <- prometheus.MustNewConstMetric(descPulls, prometheus.CounterValue, float64(n), host)
		}
	}
}
