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
	Scenario string  `json:"scenario"`
	Server   string  `json:"server,omitempty"` // "" = --url, else --compare`
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	Ratio    float64 `json:"ratio_to_healthz"`
	// BaselineRPS is the /healthz rate the ratio is to: for a scenario, the mean of
	// the /healthz runs just before and after it; for a /healthz run, the first one.
	BaselineRPS float64        `json:"baseline_rps"`
	P50Ms       float64        `json:"p50_ms"`
	P95Ms       float64        `json:"p95_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Errors      map[string]int `json:"errors"` // by status; "transport" for no answer
	PeakRSSMB   float64        `json:"peak_rss_mb,omitempty"`
	// CPU over the measured window: mfad's (with --pid) and the tool's own, per
	// request, and mfad's in cores. The split says where a request's CPU goes and the
	// cores whether mfad was saturated. On a saturated box a request's CPU is the
	// cores over the rate, so it swings with the rate; it is steadier only than a
	// ratio to /healthz, whose own cost swings too.
	CPUPerRequestUs     float64     `json:"cpu_us_per_request,omitempty"`
	Cores               float64     `json:"cores,omitempty"`
	ToolCPUPerRequestUs float64     `json:"tool_cpu_us_per_request,omitempty"`
	Exhausted           bool        `json:"exhausted,omitempty"`
	Events              *eventStats `json:"events,omitempty"`
	Concurrent          int         `json:"connections"`
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which Linux
// fixes at 100 for every program on every architecture it runs Go on.
const clockTicks = 100

// cpuSeconds is the user and system CPU time a process has used, read from
// /proc/<proc>/stat (proc a pid or "self"); ok is false when it cannot be read.
func cpuSeconds(proc string) (float64, bool) {
	b, err := os.ReadFile("/proc/" + proc + "/stat")
	if err != nil {
		return 0, false
	}
	return parseCPUSeconds(string(b))
}

// parseCPUSeconds reads utime and stime, the 14th and 15th fields of a stat line. The
// second field, the command name in parentheses, may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseCPUSeconds(stat string) (float64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:]) // f[0] is the 3rd field, the state
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(utime+stime) / clockTicks, true
}

// cpuMeter measures the CPU mfad (pid, when known) and this tool use between start and
// stop.
type cpuMeter struct {
	pid            string
	mfad0, tool0   float64
	mfadOK, toolOK bool
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{}
	if pid > 0 {
		m.pid = strconv.Itoa(pid)
		m.mfad0, m.mfadOK = cpuSeconds(m.pid)
	}
	m.tool0, m.toolOK = cpuSeconds("self")
	return m
}

// stop puts the CPU used since start into s, per request of n over elapsed.
func (m *cpuMeter) stop(s *summary, n int, elapsed time.Duration) {
	if n == 0 || elapsed <= 0 {
		return
	}
	if m.mfadOK {
		if c, ok := cpuSeconds(m.pid); ok {
			s.CPUPerRequestUs = (c - m.mfad0) * 1e6 / float64(n)
			s.Cores = (c - m.mfad0) / elapsed.Seconds()
		}
	}
	if m.toolOK {
		if c, ok := cpuSeconds("self"); ok {
			s.ToolCPUPerRequestUs = (c - m.tool0) * 1e6 / float64(n)
		}
	}
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

// setRatios sets each row's ratio to /healthz. A scenario's is to the mean of the
// /healthz rows just before and just after it (only one of them when the run ends or
// stops early, or with --baseline once); a /healthz row's is to the first, which shows
// how far the baseline drifted during the run.
func setRatios(rows []summary) {
	// A /healthz row without requests (the run was stopped during it) is no baseline.
	isBase := func(s summary) bool { return s.Scenario == "healthz" && s.RPS > 0 }
	// nearest is the rate of the closest baseline from i in direction step, or 0.
	nearest := func(i, step int) float64 {
		for j := i + step; j >= 0 && j < len(rows); j += step {
			if isBase(rows[j]) {
				return rows[j].RPS
			}
		}
		return 0
	}
	first := slices.IndexFunc(rows, isBase)
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Scenario == "healthz" && first >= 0:
			r.BaselineRPS = rows[first].RPS
		case r.Scenario != "healthz":
			var sum, n float64
			for _, rps := range []float64{nearest(i, -1), nearest(i, +1)} {
				if rps > 0 {
					sum, n = sum+rps, n+1
				}
			}
			if n > 0 {
				r.BaselineRPS = sum / n
			}
		}
		if r.BaselineRPS > 0 {
			r.Ratio = r.RPS / r.BaselineRPS
		}
	}
}
