package main

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// latencies is a sorted sample.
type latencies []time.Duration

// sorted returns a sorted copy of ds.
func sorted(ds []time.Duration) latencies {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

// pct is the p-th percentile by nearest rank: the smallest value with at least p % of
// the sample at or below it.
func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(l)))) - 1
	return l[min(max(i, 0), len(l)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summary is one scenario's result.
type summary struct {
	Scenario   string         `json:"scenario"`
	Server     string         `json:"server,omitempty"` // "" = --url, else --compare`
	Requests   int            `json:"requests"`
	Seconds    float64        `json:"seconds"`
	RPS        float64        `json:"rps"`
	Ratio      float64        `json:"ratio_to_healthz"`
	P50Ms      float64        `json:"p50_ms"`
	P95Ms      float64        `json:"p95_ms"`
	P99Ms      float64        `json:"p99_ms"`
	MaxMs      float64        `json:"max_ms"`
	Errors     map[string]int `json:"errors"` // by status; "transport" for no answer
	PeakRSSMB  float64        `json:"peak_rss_mb,omitempty"`
	Exhausted  bool           `json:"exhausted,omitempty"`
	Events     *eventStats    `json:"events,omitempty"`
	Concurrent int            `json:"connections"`
}

// rssMB reads a process's resident set size from /proc.
func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
