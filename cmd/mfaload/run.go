package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

type options struct {
	url, dataDir, jwtSecret, natsURL, state, jsonOut string
	users, devices, conns, pid                       int
	duration, warmup                                 time.Duration
	scenarios, baseline                              string
	events                                           bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("mfaload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "mfad base URL")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "mfad data dir, for its dev token secret")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret of mfad (instead of the dev secret)")
	fs.IntVar(&o.users, "users", 10000, "users to seed, each with verified TOTP devices")
	fs.IntVar(&o.devices, "devices", 2, "TOTP devices per user (each verifies about once per 30 s step)")
	fs.StringVar(&o.state, "state", "", "file keeping the seeded users between runs (gob); empty seeds every run")
	fs.StringVar(&o.scenarios, "scenarios", "status,list-devices,setup,verify,delete-device,druid-delete,mixed",
		"comma-separated: status, list-devices, setup, verify, delete-device, druid-delete, mixed")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each scenario")
	fs.IntVar(&o.conns, "c", 64, "concurrent connections")
	fs.BoolVar(&o.events, "events", false, "measure reply → event lag on mfa.events.> (needs --nats-url)")
	fs.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL for --events; for mfad's embedded server: $(mfad nats-url --role auditor)")
	fs.IntVar(&o.pid, "pid", 0, "mfad's process id, to sample its peak RSS and measure its CPU per request")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file (- for stdout)")
	fs.StringVar(&o.baseline, "baseline", "bracket", "when to measure GET /healthz: bracket (before and after every scenario; "+
		"a scenario's ratio is to the mean of its two) or once (at the start)")
	var cmp options
	fs.StringVar(&cmp.url, "compare", "", "a second mfad (e.g. with --group-commit=false): every scenario runs against both, "+
		"back to back, with ratios to the same baseline")
	fs.StringVar(&cmp.dataDir, "compare-data-dir", "", "the second mfad's data dir (its dev token secret)")
	fs.StringVar(&cmp.natsURL, "compare-nats-url", "", "the second mfad's NATS URL, for --events")
	fs.IntVar(&cmp.pid, "compare-pid", 0, "the second mfad's process id")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.baseline != "bracket" && o.baseline != "once" {
		return fmt.Errorf("--baseline %q: want bracket or once", o.baseline)
	}
	names := strings.Split(o.scenarios, ",")
	for _, n := range names {
		if _, ok := scenarios[n]; !ok {
			return fmt.Errorf("unknown scenario %q", n)
		}
	}
	primary, err := newTarget(ctx, "", o, stderr)
	if err != nil {
		return err
	}
	defer primary.close(o)
	targets := []*target{primary}
	if cmp.url != "" {
		c := o
		c.url, c.dataDir, c.pid, c.natsURL, c.jwtSecret = cmp.url, cmp.dataDir, cmp.pid, cmp.natsURL, ""
		if c.state != "" {
			c.state += ".compare"
		}
		second, err := newTarget(ctx, cmp.url, c, stderr)
		if err != nil {
			return err
		}
		defer second.close(c)
		second.opts = c
		targets = append(targets, second)
	}
	primary.opts = o

	// The box's speed drifts by up to a quarter within minutes (other tenants), and a
	// ratio to a /healthz measured minutes earlier carries that drift. A /healthz on
	// each side of a scenario cancels the drift that is slower than the scenario.
	var results []summary
	baseline := func() {
		results = append(results, measure(ctx, primary.client, primary.users, "healthz", o, nil, stderr))
	}
	baseline()
	for _, name := range names {
		for _, t := range targets {
			if consumes(name) {
				if err := topUp(ctx, t.client, t.users, o.devices, o.conns, stderr); err != nil {
					return err
				}
			}
			s := measure(ctx, t.client, t.users, name, t.opts, t.watch, stderr)
			s.Server = t.label
			results = append(results, s)
		}
		if ctx.Err() != nil {
			break
		}
		if o.baseline == "bracket" {
			baseline()
		}
	}
	setRatios(results)
	printTable(stdout, results)
	return writeJSON(o.jsonOut, stdout, results)
}

// target is one mfad under load: its client, its seeded users, its event watch.
type target struct {
	label  string
	client *client
	users  []*loadUser
	watch  *eventWatch
	opts   options
}

func newTarget(ctx context.Context, label string, o options, progress io.Writer) (*target, error) {
	secret, err := loadSecret(o.jwtSecret, o.dataDir)
	if err != nil {
		return nil, err
	}
	t := &target{label: label, client: newClient(o.url, o.conns, secret)}
	if r := t.client.do(ctx, "GET", "/healthz", "", ""); r.status != 200 {
		return nil, fmt.Errorf("%s/healthz answers %d: is mfad running?", o.url, r.status)
	}
	if t.users, err = loadState(o.state, o.users); err != nil {
		return nil, err
	}
	if err := topUp(ctx, t.client, t.users, o.devices, o.conns, progress); err != nil {
		return nil, err
	}
	if o.state != "" {
		if err := saveState(o.state, t.users); err != nil {
			return nil, err
		}
	}
	if o.events && o.natsURL != "" {
		if t.watch, err = startEventWatch(ctx, o.natsURL); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// close keeps what the run did to the users for the next run, and stops the watch.
func (t *target) close(o options) {
	t.watch.close()
	if o.state != "" {
		_ = saveState(o.state, t.users)
	}
}

// measure runs one scenario: warm-up, then duration with o.conns virtual users, each
// over its own slice of the users.
func measure(ctx context.Context, c *client, users []*loadUser, name string, o options, watch *eventWatch, progress io.Writer) summary {
	scenario := scenarios[name]
	watch.pair(scenarioPairs[name])
	type vuResult struct {
		lat       []time.Duration
		errors    map[string]int
		exhausted bool
	}
	var (
		wg    sync.WaitGroup
		count atomic.Int64
		// completed counts the requests that end inside the measured window, whenever
		// they began: the window's CPU is divided by it. Requests in flight at its
		// start put CPU in and count; those in flight at its end put CPU in and do
		// not, so in steady state the two edges cancel. count, which latencies use,
		// takes only requests that begin inside the window, and would leave the
		// first edge's CPU without its requests.
		completed atomic.Int64
		errs      atomic.Int64
		measuring atomic.Bool
		out       = make([]vuResult, o.conns)
	)
	// The window ends when the first virtual user runs out of devices to remove: after
	// it, fewer connections than asked for are at work, each answer comes sooner and
	// the rate falls, and the scenario is no longer the one the figures describe.
	ranOut := make(chan struct{})
	firstOut := sync.OnceFunc(func() { close(ranOut) })
	// Stopping must not cancel requests in flight: the server may apply one whose
	// answer the tool then never sees, and the tool's picture of the users' devices
	// would drift from the server's. Virtual users stop taking new work instead.
	var stopping atomic.Bool
	for i := range o.conns {
		var share []*loadUser
		for j := i; j < len(users); j += o.conns {
			share = append(share, users[j])
		}
		if len(share) == 0 {
			continue
		}
		v := &vu{c: c, users: share, rng: rand.New(rand.NewPCG(uint64(i), 42))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := vuResult{errors: map[string]int{}}
			for !stopping.Load() && ctx.Err() == nil {
				on := measuring.Load()
				if on {
					v.events = watch
				}
				r, err := scenario(ctx, v)
				if measuring.Load() && !stopping.Load() && !errors.Is(err, errIdle) && !errors.Is(err, errExhausted) {
					completed.Add(1)
				}
				switch {
				case errors.Is(err, errExhausted):
					res.exhausted = true
					firstOut()
					out[i] = res
					return
				case errors.Is(err, errIdle):
					time.Sleep(100 * time.Millisecond)
					continue
				}
				if !on || stopping.Load() {
					continue
				}
				res.lat = append(res.lat, r.latency)
				count.Add(1)
				if r.status < 200 || r.status > 299 || err != nil {
					key := strconv.Itoa(r.status)
					if r.status == 0 {
						key = "transport"
					}
					res.errors[key]++
					errs.Add(1)
				}
			}
			out[i] = res
		}()
	}
	sleep(ctx, o.warmup)
	measuring.Store(true)
	start := time.Now()
	cpu := startCPU(o.pid)
	var peak float64
	tick := time.NewTicker(200 * time.Millisecond)
	deadline := time.After(o.duration)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
loop:
	for {
		select {
		case <-tick.C:
			if o.pid > 0 {
				peak = max(peak, rssMB(o.pid))
			}
			el := time.Since(start)
			fmt.Fprintf(progress, "\r%-14s %5.1fs/%s %9d req %9.0f/s errors %d   ", name, el.Seconds(), o.duration,
				count.Load(), float64(count.Load())/el.Seconds(), errs.Load())
		case <-deadline:
			break loop
		case <-allDone:
			break loop
		case <-ranOut:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	stopping.Store(true)
	var s summary
	cpu.stop(&s, int(completed.Load()), elapsed)
	wg.Wait()
	fmt.Fprintln(progress)
	s.Scenario, s.Seconds, s.Errors, s.PeakRSSMB, s.Concurrent = name, elapsed.Seconds(), map[string]int{}, peak, o.conns
	var all []time.Duration
	for _, r := range out {
		all = append(all, r.lat...)
		for k, n := range r.errors {
			s.Errors[k] += n
		}
		s.Exhausted = s.Exhausted || r.exhausted
	}
	lat := sorted(all)
	s.Requests = len(lat)
	s.RPS = float64(len(lat)) / elapsed.Seconds()
	s.P50Ms, s.P95Ms, s.P99Ms = ms(lat.pct(50)), ms(lat.pct(95)), ms(lat.pct(99))
	if len(lat) > 0 {
		s.MaxMs = ms(lat[len(lat)-1])
	}
	s.Events = watch.settle(5 * time.Second)
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func printTable(w io.Writer, results []summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tratio\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tevent lag p50/p99 ms\tlost/dup\tpeak RSS MB\tmfad cores\tCPU µs/req mfad/tool\t")
	for _, s := range results {
		errs := "0"
		if len(s.Errors) > 0 {
			b, _ := json.Marshal(s.Errors)
			errs = string(b)
		}
		lag, lost := "-", "-"
		if s.Events != nil && s.Events.Expected > 0 {
			lag = fmt.Sprintf("%.1f/%.1f", s.Events.LagP50Ms, s.Events.LagP99Ms)
			lost = fmt.Sprintf("%d/%d", s.Events.Missing, s.Events.Duplicates)
		}
		rss := "-"
		if s.PeakRSSMB > 0 {
			rss = fmt.Sprintf("%.0f", s.PeakRSSMB)
		}
		name := s.Scenario
		if s.Server != "" {
			name += " @" + s.Server
		}
		if s.Exhausted {
			name += " (pool exhausted)"
		}
		cores, mfadCPU, cpu := "-", "-", "-" // "-": not measured (mfad's without --pid)
		if s.Cores > 0 {
			cores, mfadCPU = fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.0f", s.CPUPerRequestUs)
		}
		if s.Cores > 0 || s.ToolCPUPerRequestUs > 0 {
			cpu = fmt.Sprintf("%s/%.0f", mfadCPU, s.ToolCPUPerRequestUs)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, s.RPS, s.Ratio,
			s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs, errs, lag, lost, rss, cores, cpu)
	}
	tw.Flush()
}

func writeJSON(path string, stdout io.Writer, results []summary) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if path == "-" {
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
