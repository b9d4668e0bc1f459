package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// The targets: regmirror's time over the best peer's (or over the
// bandwidth floor for a cold WAN run).
var targets = map[string]map[string]float64{
	"lan": {"cold app": 0.67, "cold many": 0.67, "cold big": 0.90, "warm": 0.80},
	"wan": {"cold floor": 1.15, "warm": 0.50},
}

const maxRSSTarget = 64 << 10 // KiB

func toolName(t string) string { return strings.Fields(t)[0] }

func isPeer(t string) bool { return toolName(t) != "regmirror" }

// best is the fastest run of a tool (or, with peers, of any peer) in one
// workload and profile: other load on the machine only ever slows a run.
func best(w workloadResult, match func(string) bool, warm bool) (time.Duration, string) {
	var b time.Duration
	var who string
	for _, t := range w.Tools {
		if !match(t.Tool) {
			continue
		}
		d := t.Cold.Wall
		if warm {
			d = t.Warm.Wall
		}
		if b == 0 || d < b {
			b, who = d, t.Tool
		}
	}
	return b, who
}

func perImage(counts map[string]int, images int) string {
	if counts == nil {
		return "–"
	}
	n := 0
	for _, v := range counts {
		n += v
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(images))
}

// tenths summarises in-flight samples: the highest value in each tenth of
// the run.
func tenths(s []int) string {
	if len(s) == 0 {
		return "–"
	}
	var out []string
	for i := range 10 {
		lo, hi := i*len(s)/10, (i+1)*len(s)/10
		if hi <= lo {
			hi = lo + 1
		}
		if lo >= len(s) {
			break
		}
		m := 0
		for _, v := range s[lo:min(hi, len(s))] {
			m = max(m, v)
		}
		out = append(out, fmt.Sprint(m))
	}
	return strings.Join(out, " ")
}

func meanMax(s []int) (float64, int) {
	if len(s) == 0 {
		return 0, 0
	}
	sum, m := 0, 0
	for _, v := range s {
		sum += v
		m = max(m, v)
	}
	return float64(sum) / float64(len(s)), m
}

func report(out io.Writer, c config, results []workloadResult) {
	fmt.Fprintf(out, "\n## Results (BENCH_SCALE=%g, %s, %d CPUs; WAN: %s RTT, %g MiB/s shared)\n", c.scale, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), c.rtt, c.bandwidth/mb)
	for _, profile := range c.profiles {
		fmt.Fprintf(out, "\n### %s profile\n\n", strings.ToUpper(profile))
		floorCol := ""
		if profile == "wan" {
			floorCol = " bandwidth floor |"
		}
		fmt.Fprintf(out, "| workload | tool | cold |%s warm | GET manifest c/w | GET blob c/w | HEAD c/w | tags list c/w | ping c/w | source req/img c/w | target req/img c/w | peak RSS c/w | load avg cold, warm | target ok |\n", floorCol)
		fmt.Fprintf(out, "|---|---|---:|%s---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n", strings.Repeat("---:|", len(floorCol)/len(" bandwidth floor |")))
		for _, w := range results {
			if w.Profile != profile {
				continue
			}
			for _, t := range w.Tools {
				cc, wc := t.Cold.Counts, t.Warm.Counts
				heads := func(x map[string]int) int { return x["manifest HEAD"] + x["blob HEAD"] }
				ok := "yes"
				if t.Mismatch > 0 {
					ok = fmt.Sprintf("%d tags differ", t.Mismatch)
				}
				fl := ""
				if profile == "wan" {
					fl = " " + secs(w.WANFloor) + " |"
				}
				fmt.Fprintf(out, "| %s | %s | %s |%s %s | %d / %d | %d / %d | %d / %d | %d / %d | %d / %d | %s / %s | %s / %s | %s / %s | %.2f→%.2f, %.2f→%.2f | %s |\n",
					w.Name, t.Tool, secs(t.Cold.Wall), fl, secs(t.Warm.Wall),
					cc["manifest GET"], wc["manifest GET"], cc["blob GET"], wc["blob GET"], heads(cc), heads(wc), cc["tags list"], wc["tags list"], cc["ping"], wc["ping"],
					perImage(cc, w.Images), perImage(wc, w.Images), perImage(t.Cold.TargetCounts, w.Images), perImage(t.Warm.TargetCounts, w.Images),
					rssText(t.Cold), rssText(t.Warm), t.Cold.Load[0], t.Cold.Load[1], t.Warm.Load[0], t.Warm.Load[1], ok)
			}
		}
	}

	fmt.Fprint(out, "\n### Targets (best run of each tool; the best peer is the fastest of the others)\n\n")
	fmt.Fprintln(out, "| profile | workload | phase | regmirror | best peer | ratio to best peer | ratio to floor | target | met | source GETs (warm) | peak RSS |")
	fmt.Fprintln(out, "|---|---|---|---:|---|---:|---:|---|---|---:|---:|")
	for _, w := range results {
		for _, warm := range []bool{false, true} {
			rm, _ := best(w, func(t string) bool { return t == "regmirror" }, warm)
			pb, who := best(w, isPeer, warm)
			if rm == 0 {
				continue
			}
			phase := "cold"
			if warm {
				phase = "warm"
			}
			ratio, floorRatio, goal, met := "–", "–", "–", "–"
			if pb > 0 {
				ratio = fmt.Sprintf("%.3f", rm.Seconds()/pb.Seconds())
			}
			var limit float64
			var against float64
			switch {
			case warm:
				limit, against = targets[w.Profile]["warm"], rm.Seconds()/pb.Seconds()
				goal = fmt.Sprintf("≤ %.2f× best peer", limit)
			case w.Profile == "wan":
				limit, against = targets["wan"]["cold floor"], rm.Seconds()/w.WANFloor.Seconds()
				goal = fmt.Sprintf("≤ %.2f× floor", limit)
			default:
				limit, against = targets["lan"]["cold "+w.Name], rm.Seconds()/pb.Seconds()
				goal = fmt.Sprintf("≤ %.2f× best peer", limit)
			}
			if w.Profile == "wan" && !warm {
				floorRatio = fmt.Sprintf("%.3f (%s)", rm.Seconds()/w.WANFloor.Seconds(), secs(w.WANFloor))
			} else if w.Profile == "lan" && !warm && w.Upload > 0 {
				floorRatio = fmt.Sprintf("%.3f (direct upload %s)", rm.Seconds()/w.Upload.Seconds(), secs(w.Upload))
			}
			if pb > 0 || (w.Profile == "wan" && !warm) {
				met = "no"
				if against <= limit {
					met = "**yes**"
				}
			}
			var gets, rss string
			for _, t := range w.Tools {
				if t.Tool == "regmirror" {
					r := t.Cold
					if warm {
						r = t.Warm
					}
					rss = rssText(r)
					if r.MaxRSSKB > maxRSSTarget {
						rss += " (over 64)"
					}
					if warm {
						gets = fmt.Sprint(r.Counts["manifest GET"] + r.Counts["blob GET"])
					}
				}
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s %s | %s | %s | %s | %s | %s | %s |\n", strings.ToUpper(w.Profile), w.Name, phase, secs(rm), who, secs(pb), ratio, floorRatio, goal, met, gets, rss)
		}
	}

	fmt.Fprint(out, "\n### Requests in flight at the source over each cold run (sampled every 50 ms)\n\n")
	fmt.Fprintln(out, "| profile | workload | tool | mean | max | highest in each tenth of the run | WAN connections | WAN bytes to the tool |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---|---:|---:|")
	for _, w := range results {
		for _, t := range w.Tools {
			mean, mx := meanMax(t.Cold.InFlight)
			conns, bytes := "–", "–"
			if w.Profile == "wan" {
				conns, bytes = fmt.Sprint(t.Cold.WANConns), fmt.Sprintf("%.0f MB", float64(t.Cold.WANBytes)/1e6)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %.1f | %d | %s | %s | %s |\n", strings.ToUpper(w.Profile), w.Name, t.Tool, mean, mx, tenths(t.Cold.InFlight), conns, bytes)
		}
	}

	fmt.Fprint(out, "\n### CPU seconds during each run\n\n")
	fmt.Fprintln(out, "| profile | workload | tool | run | wall | tool CPU | source registry CPU | target registry CPU | proxies CPU |")
	fmt.Fprintln(out, "|---|---|---|---|---:|---:|---:|---:|---:|")
	for _, w := range results {
		for _, t := range w.Tools {
			for i, r := range []run{t.Cold, t.Warm} {
				fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f |\n", strings.ToUpper(w.Profile), w.Name, t.Tool, [...]string{"cold", "warm"}[i], secs(r.Wall), r.CPU, r.SrcCPU, r.DstCPU, r.ProxyCPU)
			}
		}
	}

	fmt.Fprint(out, "\n### Floors\n\n")
	fmt.Fprintf(out, "| workload | images | blob MB | cp | sha256sum (1 core / all cores) | direct upload to a target (%d at once) | WAN bandwidth floor |\n", c.uploadJobs)
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	seen := map[string]bool{}
	for _, w := range results {
		if seen[w.Name] {
			continue
		}
		seen[w.Name] = true
		fmt.Fprintf(out, "| %s | %d | %d | %s | %s / %s | %s | %s |\n", w.Name, w.Images, w.Bytes/1e6, secs(w.Copy), secs(w.Hash), secs(w.HashConc), secs(w.Upload),
			secs(time.Duration(float64(w.Bytes)/c.bandwidth*float64(time.Second))))
	}
}

// rssText is a run's peak RSS, marked "≤" when it is wait4's upper bound
// rather than the command's own (no GNU time; see timed).
func rssText(r run) string {
	le := ""
	if !r.RSSExact {
		le = "≤ "
	}
	return fmt.Sprintf("%s%.1f MB", le, float64(r.MaxRSSKB)/1024)
}
